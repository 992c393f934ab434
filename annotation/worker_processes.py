"""Which worker process holds a piece of work, and whether that process still lives.

A worker names itself `host:pid`. On the same host its pid tells at once whether it lives; on
another host only the heartbeat it writes can tell, and one older than the given staleness means
it is gone. The job machinery (jobs/workers.py) and Hub pushes (annotation/hub_push_recovery.py)
judge their workers by these rules.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is gone for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def worker_alive(*, worker: str, heartbeat_at: datetime | None, now: datetime, stale: timedelta) -> bool:
    """Is the process named `worker` still there? On this host: its pid (never this process); elsewhere: its heartbeat."""
    host, _, pid = worker.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        return int(pid) != os.getpid() and pid_alive(int(pid))
    return heartbeat_at is not None and now - heartbeat_at < stale
