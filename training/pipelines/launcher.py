"""A warm launcher: one process that has imported the ML stack and forks a child per pipeline.

A cold `python -m training.pipelines.<kind>` spends about five seconds importing torch,
transformers and TRL before it trains anything. A gpu worker starts this launcher once, next to
itself; each run, generation or scoring job then asks it for a forked child that already has
those modules loaded, and starts training at once.

    python -m training.pipelines.launcher --socket /path/launcher.sock [--parent-pid N]

The launcher never runs a torch operation: after one, OpenMP's thread pool exists, and a child
forked from it can hang in its first parallel region (seen here with GNU OpenMP). Only imports and
pure-Python caches are warmed.

CUDA: the launcher imports torch but never initialises CUDA (it asks torch to count devices
through NVML, which does not), and refuses to serve if something did. Each child is a fresh
fork and initialises CUDA for itself, as a cold process would. Multi-GPU runs do not come here:
`accelerate launch` starts its own processes.

Protocol, over a Unix stream socket, one connection per pipeline:
    client -> {"module": "training.pipelines.sft", "argv": [...], "cwd": ..., "env": {...}}\\n
              with one file descriptor attached (SCM_RIGHTS): the child's stdout and stderr.
    launcher -> {"pid": 1234}\\n            the child runs, in its own session
             -> {"exit": 0}\\n              its exit status as subprocess reports it (-9: SIGKILL)
             or {"error": "..."}\\n         nothing was started; the client starts a cold process.
If the client's connection closes while the child runs (the worker died), the launcher kills
the child's process group, as PR_SET_PDEATHSIG does for a cold pipeline. The launcher exits when
its parent (the worker) goes away; its children get SIGKILL with it.

Pure Python: never imports Django.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import selectors
import signal
import socket
import sys
import time
import traceback

# The modules a pipeline imports at its start. Pipeline modules themselves are not preloaded:
# the child runs one as __main__, and runpy warns about a module that is already imported.
PRELOAD = (
    "torch",
    "datasets",
    "transformers",
    "trl",
    "peft",
    "transformers.models.llama.modeling_llama",
    "training.pipelines.common",
)
# Names whose import is lazy in these packages; touching them imports the trainers' modules.
PRELOAD_ATTRIBUTES = {
    "trl": ("SFTTrainer", "SFTConfig", "RewardTrainer", "RewardConfig", "DPOTrainer", "DPOConfig",
            "GRPOTrainer", "GRPOConfig", "RLOOTrainer", "RLOOConfig"),
    "transformers": ("AutoModelForCausalLM", "AutoModelForSequenceClassification", "AutoTokenizer",
                     "PreTrainedTokenizerFast", "TrainerCallback", "set_seed"),
    "peft": ("LoraConfig", "get_peft_model"),
}
# Pure-Python caches the first model load of a process fills (hundreds of regexes compiled for
# transformers' checkpoint conversion table: about 0.4 s). Filled once here, every fork has them.
PRELOAD_CALLS = (
    ("transformers.conversion_mapping", "get_checkpoint_conversion_mapping", ("llama",)),
)
# Variables read when these modules are imported: a child whose environment differs in one of
# them would not behave as a cold process would, so the launcher refuses it (the client falls back).
IMPORT_TIME_PREFIXES = ("HF_", "HUGGINGFACE_", "TRANSFORMERS_", "TORCH", "PYTORCH_", "CUDA_", "NCCL_",
                        "OMP_", "MKL_", "TOKENIZERS_", "ACCELERATE_", "TRL_", "PYTHONHASHSEED")
SET_BY_LAUNCHER = {"PYTORCH_NVML_BASED_CUDA_CHECK"}
REQUEST_LIMIT = 1 << 20
READ_TIMEOUT_SECONDS = 10.0


def log(message: str) -> None:
    sys.stderr.write(f"[launcher {os.getpid()}] {message}\n")
    sys.stderr.flush()


def import_time_env(env: dict) -> dict:
    return {k: v for k, v in env.items() if k.startswith(IMPORT_TIME_PREFIXES) and k not in SET_BY_LAUNCHER}


def env_mismatch(wanted: dict, loaded: dict) -> list[str]:
    """The import-time variables on which a request's environment and the launcher's differ."""
    wanted = import_time_env(wanted)
    return sorted(k for k in set(wanted) | set(loaded) if wanted.get(k) != loaded.get(k))


def preload(modules=PRELOAD, attributes=PRELOAD_ATTRIBUTES, calls=PRELOAD_CALLS) -> float:
    """Import the ML stack and fill its caches; raise if that initialised CUDA (a fork could not use it)."""
    import importlib

    started = time.perf_counter()
    for name in modules:
        importlib.import_module(name)
    for name, attrs in attributes.items():
        if name in sys.modules:
            for attr in attrs:
                getattr(sys.modules[name], attr)
    for module, function, args in calls:
        try:
            getattr(importlib.import_module(module), function)(*args)
        except (ImportError, AttributeError) as exc:  # another transformers version: only slower
            log(f"could not warm {module}.{function}: {exc}")
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        raise RuntimeError("importing the ML stack initialised CUDA; forked pipelines could not use it")
    # Move the imported objects out of the collector's reach: a child's collections would
    # otherwise walk (and so copy, page by page) the whole heap it shares with the launcher.
    gc.collect()
    gc.freeze()
    return time.perf_counter() - started


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the launcher died before prctl took effect
        os._exit(137)


def _exit_code(value) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)
    return 1


def run_child(request: dict, out_fd: int, launcher_pid: int) -> None:  # pragma: no cover - runs in the fork
    """Become the pipeline: own session, the given stdout, the request's cwd, env and argv."""
    import runpy

    code = 1
    try:
        os.setsid()
        _die_with_parent(launcher_pid)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        for fd in (null, out_fd):
            if fd > 2:
                os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.stdout.reconfigure(line_buffering=True)
        sys.stderr.reconfigure(line_buffering=True)
        sys.argv = [request["module"], *request["argv"]]
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _send(conn: socket.socket, message: dict) -> None:
    with contextlib.suppress(OSError):
        conn.sendall((json.dumps(message) + "\n").encode())


def _read_request(conn: socket.socket, module_prefix: str) -> tuple[dict, int]:
    conn.settimeout(READ_TIMEOUT_SECONDS)
    data, fds, _flags, _addr = socket.recv_fds(conn, REQUEST_LIMIT, 1)
    try:
        while not data.endswith(b"\n"):
            more = conn.recv(REQUEST_LIMIT)
            if not more or len(data) > REQUEST_LIMIT:
                raise ValueError("incomplete request")
            data += more
        if len(fds) != 1:
            raise ValueError("the request carries no output descriptor")
        request = json.loads(data)
        if not (isinstance(request.get("module"), str) and request["module"].startswith(module_prefix)):
            raise ValueError(f"module must start with {module_prefix}")
        if not isinstance(request.get("argv"), list) or not isinstance(request.get("env"), dict):
            raise ValueError("argv must be a list and env an object")
        request.setdefault("cwd", os.getcwd())
        return request, fds[0]
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


class Launcher:
    def __init__(self, listener: socket.socket, parent_pid: int | None, module_prefix: str = "training.pipelines."):
        self.listener = listener
        self.module_prefix = module_prefix
        self.parent_pid = parent_pid
        self.loaded_env = import_time_env(dict(os.environ))
        self.selector = selectors.DefaultSelector()
        self.children: dict[int, socket.socket | None] = {}  # pid -> the client's connection
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.stopping = False

    def serve(self) -> None:
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "wake")
        while not self.stopping:
            for key, _ in self.selector.select(timeout=1.0):
                if key.data == "accept":
                    self._accept()
                elif key.data == "wake":
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self.wake_r, 512):
                            pass
                else:
                    self._client_event(key.fileobj, key.data)
            self._reap()
            if self.parent_pid is not None and os.getppid() != self.parent_pid:
                log("the worker that started this launcher is gone; exiting")
                self.stopping = True
        self._kill_all()

    def _stop(self, *_):
        self.stopping = True

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        try:
            request, out_fd = _read_request(conn, self.module_prefix)
        except (OSError, ValueError) as exc:
            _send(conn, {"error": f"bad request: {exc}"})
            conn.close()
            return
        try:
            mismatch = env_mismatch(request["env"], self.loaded_env)
            if mismatch:
                _send(conn, {"error": "the launcher imported its modules under other values of " + ", ".join(mismatch)})
                conn.close()
                return
            try:
                pid = os.fork()
            except OSError as exc:  # out of memory or processes: the client starts a cold process
                _send(conn, {"error": f"fork failed: {exc}"})
                conn.close()
                return
            if pid == 0:  # pragma: no cover - the child
                self._close_in_child(conn)
                run_child(request, out_fd, launcher_pid=os.getppid())
        finally:
            os.close(out_fd)
        self.children[pid] = conn
        self.selector.register(conn, selectors.EVENT_READ, pid)
        _send(conn, {"pid": pid})

    def _close_in_child(self, conn: socket.socket) -> None:  # pragma: no cover - runs in the fork
        """Drop the launcher's signal handling and every socket it holds; keep only the output fd."""
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        for other in [*(c for c in self.children.values() if c is not None), conn, self.listener]:
            other.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        self.selector.close()

    def _client_event(self, conn: socket.socket, pid: int) -> None:
        """The client sends nothing after its request: readable means it hung up."""
        with contextlib.suppress(OSError):
            if conn.recv(4096):
                return
        self._forget_client(pid)
        if pid in self.children:  # not reaped yet: kill it; _reap collects it
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            self.children[pid] = None

    def _forget_client(self, pid: int) -> None:
        conn = self.children.get(pid)
        if conn is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(conn)
            conn.close()

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is not None:
                _send(conn, {"exit": os.waitstatus_to_exitcode(status)})
                with contextlib.suppress(KeyError, ValueError):
                    self.selector.unregister(conn)
                conn.close()

    def _kill_all(self) -> None:
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while self.children and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--socket", required=True, help="Path of the Unix socket to listen on.")
    parser.add_argument("--parent-pid", type=int, default=None, help="Exit when this process is no longer the parent.")
    parser.add_argument("--no-preload", action="store_true", help="Skip the ML imports (tests of the launcher itself).")
    parser.add_argument("--modules", default="training.pipelines.", help="Prefix of the modules it may run.")
    args = parser.parse_args(argv)

    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # torch.cuda.is_available() without cuInit
    # Stopped while still importing: exit through the finally below, which removes the socket.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(args.socket)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(args.socket)
    os.chmod(args.socket, 0o600)
    listener.listen(64)  # requests wait in the backlog while the imports run
    launcher = Launcher(listener, args.parent_pid, module_prefix=args.modules)
    try:
        if not args.no_preload:
            log(f"imported the ML stack in {preload():.1f}s; serving on {args.socket}")
        launcher.serve()
    except SystemExit:
        return 0
    except Exception as exc:
        log(f"stopped: {type(exc).__name__}: {exc}")
        return 1
    finally:
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(args.socket)
    return 0


if __name__ == "__main__":
    sys.exit(main())
