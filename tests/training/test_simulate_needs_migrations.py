"""`simulate` on a database that was never migrated stops at once with the command to run."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_simulate_on_an_unmigrated_database_names_the_missing_migrations_and_writes_nothing(tmp_path):
    db = tmp_path / "fresh.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}", "FEEDBACKLOOP_STORAGE_ROOT": str(tmp_path / "storage")}
    env.pop("FEEDBACKLOOP_REQUIRE_SERVICES", None)
    done = subprocess.run([sys.executable, "manage.py", "simulate", "--full-loop", "--small"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "unapplied migration(s)" in done.stderr and "manage.py migrate" in done.stderr
    assert "base model" not in done.stdout  # no stage started
    assert not (tmp_path / "storage").exists() or not any((tmp_path / "storage").iterdir())
