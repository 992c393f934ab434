"""Start a pipeline process: forked by the worker's warm launcher when it has one, else cold.

A gpu worker starts `training.pipelines.launcher` once, at worker_init (config/celery_app.py),
and tells its pool processes where it listens through LAUNCHER_ENV. `pipeline_start` asks it
for a child that has torch, transformers and TRL imported already, which saves the five-odd
seconds a cold `python -m training.pipelines.<kind>` spends importing them. Whatever goes wrong
on that path (no launcher, a launcher still importing past the wait, an environment it cannot
serve) falls back to the cold subprocess, and the returned note says why.

Both kinds of process offer what jobs/stream.py's follow_pipeline uses: pid (also the process group),
stdout (text lines), poll(), wait() and send_signal(). Both die with the worker process that
started them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings

LAUNCHER_ENV = "FEEDBACKLOOP_PIPELINE_LAUNCHER"
PIPELINE_PREFIX = "training.pipelines."
# The launcher answers once its imports are done: about 5 s on a quiet machine, longer under load.
REPLY_TIMEOUT_SECONDS = 120.0

logger = logging.getLogger(__name__)
_launcher: subprocess.Popen | None = None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the pipeline gets SIGKILL when the worker process that started it dies."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class LaunchedPipeline:
    """A pipeline the launcher forked: subprocess.Popen's interface, as far as follow_pipeline needs it.

    The launcher reports the exit status over the connection. If the connection ends without
    one, the launcher died and took the child with it (SIGKILL), which is what poll() reports.
    """

    def __init__(self, *, conn: socket.socket, pid: int, stdout, pending: bytes = b""):
        self.pid = pid
        self.stdout = stdout
        self.returncode: int | None = None
        self._conn = conn
        self._buffer = pending
        self.args = ["<launcher>", str(pid)]

    def _consume(self, data: bytes) -> None:
        self._buffer += data
        while b"\n" in self._buffer and self.returncode is None:
            line, self._buffer = self._buffer.split(b"\n", 1)
            with contextlib.suppress(ValueError):
                message = json.loads(line)
                if isinstance(message, dict) and isinstance(message.get("exit"), int):
                    self.returncode = message["exit"]

    def _read(self, timeout: float | None) -> None:
        self._consume(b"")
        if self.returncode is not None:
            return
        self._conn.settimeout(timeout)
        try:
            data = self._conn.recv(4096)
        except (socket.timeout, BlockingIOError):
            return
        except OSError:
            data = b""
        if not data:
            self.returncode = -signal.SIGKILL
            self._close()
            return
        self._consume(data)
        if self.returncode is not None:
            self._close()

    def _close(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.close()

    def poll(self) -> int | None:
        if self.returncode is None:
            self._read(0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout)
            self._read(left)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)


def _cold(command: list[str], *, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        command, cwd=settings.BASE_DIR, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, encoding="utf-8", errors="replace",
        bufsize=1, start_new_session=True, preexec_fn=_die_with_parent,
    )


def _launch(socket_path: str, *, module: str, argv: list[str], env: dict) -> LaunchedPipeline:
    """Ask the launcher for a child; raise OSError or RuntimeError when it cannot give one."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    read_fd = write_fd = -1
    try:
        conn.settimeout(REPLY_TIMEOUT_SECONDS)
        conn.connect(socket_path)
        read_fd, write_fd = os.pipe()
        request = {"module": module, "argv": argv, "env": env, "cwd": str(settings.BASE_DIR)}
        socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], [write_fd])
        os.close(write_fd)
        write_fd = -1
        data = b""
        while b"\n" not in data:
            more = conn.recv(4096)
            if not more:
                raise RuntimeError("the launcher closed the connection without starting the pipeline")
            data += more
        line, rest = data.split(b"\n", 1)
        reply = json.loads(line)
        if "error" in reply or not isinstance(reply.get("pid"), int):
            raise RuntimeError(str(reply.get("error") or reply))
        stdout = open(read_fd, encoding="utf-8", errors="replace", buffering=1)
        read_fd = -1
        return LaunchedPipeline(conn=conn, pid=reply["pid"], stdout=stdout, pending=rest)
    except BaseException:
        conn.close()
        for fd in (read_fd, write_fd):
            if fd >= 0:
                os.close(fd)
        raise


def pipeline_start(command: list[str], *, env: dict) -> tuple[subprocess.Popen | LaunchedPipeline, str]:
    """Start `command` (`python -m training.pipelines.<kind> ...` or any other argv).

    Returns the process and a note for the run's log: how it was started, and why not warm.
    """
    socket_path = os.environ.get(LAUNCHER_ENV, "")
    warm_shape = len(command) >= 3 and command[0] == sys.executable and command[1] == "-m" \
        and command[2].startswith(PIPELINE_PREFIX)
    if not (socket_path and warm_shape and settings.TRAINING_WARM_START):
        return _cold(command, env=env), "cold start"
    try:
        return _launch(socket_path, module=command[2], argv=command[3:], env=env), "forked by the warm launcher"
    except (OSError, ValueError, RuntimeError) as exc:
        logger.warning("pipeline launcher unavailable, starting cold: %s", exc)
        return _cold(command, env=env), f"cold start (launcher unavailable: {exc})"


# The launcher's life, tied to a gpu worker's main process ---------------------------------------


def launcher_socket_path(pid: int) -> str:
    # Unix socket paths are limited to about 100 bytes, so not under a possibly deep STORAGE_ROOT.
    return str(Path(tempfile.gettempdir()) / f"feedbackloop-launcher-{pid}.sock")


def launcher_start(*, queues: set[str], env: dict) -> subprocess.Popen | None:
    """Start the launcher for this worker if it consumes the gpu queue. Pool processes forked later inherit its address."""
    global _launcher
    if not settings.TRAINING_WARM_START or "gpu" not in queues or _launcher is not None:
        return None
    path = launcher_socket_path(os.getpid())
    _launcher = subprocess.Popen(
        [sys.executable, "-m", "training.pipelines.launcher", "--socket", path, "--parent-pid", str(os.getpid())],
        cwd=settings.BASE_DIR, env=env, stdin=subprocess.DEVNULL,
    )
    os.environ[LAUNCHER_ENV] = path
    logger.info("pipeline launcher %s starting on %s", _launcher.pid, path)
    return _launcher


def launcher_stop(timeout: float = 10.0) -> None:
    global _launcher
    proc, _launcher = _launcher, None
    path = os.environ.pop(LAUNCHER_ENV, None)
    if proc is None:
        return
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if path:  # a launcher that was killed could not remove its socket
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
