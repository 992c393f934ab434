"""The embedded default database (SQLite, for `make demo` and the full loop) and its connection settings."""

import os
import subprocess
import sys
from pathlib import Path


def test_the_embedded_sqlite_database_runs_in_wal_mode(tmp_path):
    """Web server, worker and beat share the SQLite file: WAL lets readers go on while one writes."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}"}
    env.pop("FEEDBACKLOOP_REQUIRE_SERVICES", None)
    code = ("from django.db import connection\n"
            "c = connection.cursor()\n"
            "print([c.execute(f'PRAGMA {p}').fetchone()[0] for p in ('journal_mode', 'synchronous', 'busy_timeout')])")
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=Path(__file__).resolve().parents[1],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "['wal', 1, 30000]"
