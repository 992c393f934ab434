"""The processes a full loop needs: a web server for the labelers' HTTP and a Celery worker for the runs.

Both are subprocesses on this machine with the settings of the calling process: the same database
(DATABASE_URL, derived from the live connection so that a test database works too), broker,
cache and storage root. Each runs in its own process group and is stopped with it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

START_TIMEOUT = 90.0


def database_url() -> str:
    """The URL of the database this process is connected to (a test database included)."""
    conf = connection.settings_dict
    if conf["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{conf['NAME']}"
    user = conf.get("USER") or ""
    password = f":{conf['PASSWORD']}" if conf.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    port = f":{conf['PORT']}" if conf.get("PORT") else ""
    return f"postgres://{auth}{conf.get('HOST') or '127.0.0.1'}{port}/{conf['NAME']}"


def child_env() -> dict:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE=os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings.local"),
        DATABASE_URL=database_url(),
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        FEEDBACKLOOP_STORAGE_ROOT=str(settings.STORAGE_ROOT),
        BASE_MODEL=settings.BASE_MODEL,
        CELERY_TASK_ALWAYS_EAGER="0",
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
        DJANGO_DEBUG="0",
    )
    if getattr(settings, "REDIS_URL", ""):
        env["REDIS_URL"] = settings.REDIS_URL
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Child:
    """A started subprocess with its log file."""

    def __init__(self, name: str, proc: subprocess.Popen, log_path: Path, url: str = ""):
        self.name, self.proc, self.log_path, self.url = name, proc, log_path, url

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, grace: float = 20.0) -> None:
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except OSError:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                self.proc.kill()
            self.proc.wait()


def _spawn(name: str, command: list[str], log_dir: Path) -> tuple[subprocess.Popen, Path]:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        command, cwd=settings.BASE_DIR, env=child_env(), stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )
    log.close()
    return proc, log_path


def web_server_start(*, log_dir: Path, workers: int = 2, threads: int = 4) -> Child:
    """gunicorn on a free port of 127.0.0.1; returns once it accepts connections."""
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
        "--keep-alive", "30", "--timeout", "120", "--log-level", "warning",
    ]
    proc, log_path = _spawn("web", command, log_dir)
    child = Child("web", proc, log_path, url=f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return child
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                child.stop()
                raise RuntimeError(f"The web server did not start:\n{child.log_tail()}")
            time.sleep(0.2)


def worker_running(timeout: float = 2.0) -> bool:
    """Does a Celery worker answer a ping on this broker?"""
    from config.celery_app import app

    try:
        return bool(app.control.ping(timeout=timeout))
    except Exception:  # noqa: BLE001 - an unreachable broker means no worker we can use
        return False


def worker_start(*, log_dir: Path) -> Child:
    """`celery -A config worker -Q default,gpu --concurrency 1`; returns once it is ready."""
    command = [
        sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default,gpu", "--concurrency", "1",
        "--pool", "prefork", "-n", f"loop-{os.getpid()}@%h", "--loglevel", "INFO", "--without-gossip",
        "--without-mingle",
    ]
    proc, log_path = _spawn("worker", command, log_dir)
    child = Child("worker", proc, log_path)
    deadline = time.monotonic() + START_TIMEOUT
    while "ready." not in child.log_tail(100_000):
        if proc.poll() is not None or time.monotonic() > deadline:
            child.stop()
            raise RuntimeError(f"The Celery worker did not start:\n{child.log_tail()}")
        time.sleep(0.25)
    return child
