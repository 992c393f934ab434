"""Fixtures for the training tests: a storage root, the tiny base model and a real Celery worker.

`tiny_base_model` and `celery_worker_process` are shared with the browser tests of the training
pages; keep their names. Tests that use the worker need @pytest.mark.django_db(transaction=True),
so that the worker (another process, the same test database) sees committed rows.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TINY_STEPS = 30
TINY_SECONDS = 20
WORKER_START_TIMEOUT = 60


@pytest.fixture(scope="session")
def training_storage_root(tmp_path_factory) -> Path:
    """One STORAGE_ROOT for the session, shared with the Celery worker through FEEDBACKLOOP_STORAGE_ROOT."""
    return tmp_path_factory.mktemp("storage")


@pytest.fixture(autouse=True)
def _storage_root(training_storage_root, settings):
    settings.STORAGE_ROOT = training_storage_root
    settings.BASE_MODEL = "tiny"
    yield training_storage_root


def _tiny_cache_key() -> str:
    """The built model only depends on the builder and its bundled data: cache it across sessions."""
    root = Path(settings.BASE_DIR) / "training" / "pipelines"
    digest = hashlib.sha256(f"{TINY_STEPS}:{TINY_SECONDS}".encode())
    for path in [root / "base_model.py", *sorted((root / "data").glob("*"))]:
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def tiny_base_model_dir(training_storage_root) -> Path:
    """The tiny model's files under STORAGE_ROOT/models/tiny, built once (and cached under var/)."""
    cache = Path(settings.BASE_DIR) / "var" / "test-cache" / f"tiny-{_tiny_cache_key()}"
    if not (cache / "config.json").exists():
        staging = cache.with_name(f"{cache.name}.{uuid.uuid4().hex}")
        subprocess.run(
            [sys.executable, "-m", "training.pipelines.base_model", "--output", str(staging),
             "--max-steps", str(TINY_STEPS), "--seconds", str(TINY_SECONDS)],
            cwd=settings.BASE_DIR, check=True, stdout=subprocess.DEVNULL,
        )
        try:
            staging.rename(cache)
        except OSError:  # another session built it at the same time
            shutil.rmtree(staging, ignore_errors=True)
    target = training_storage_root / "models" / "tiny"
    if not target.exists():
        shutil.copytree(cache, target)
    return target


@pytest.fixture
def tiny_base_model(tiny_base_model_dir):
    """ModelVersion `tiny` (kind base), registered in this test's database; the files are built once."""
    from training import services

    return services.base_model_bootstrap()


def worker_env(storage_root: Path) -> dict:
    # The live connection's URL: pytest-django's test database, which the worker must share.
    from training.simulation.processes import database_url

    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=database_url(),
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        REDIS_URL=settings.REDIS_URL,
        FEEDBACKLOOP_STORAGE_ROOT=str(storage_root),
        BASE_MODEL="tiny",
        CELERY_TASK_ALWAYS_EAGER="0",
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
    )
    return env


CELERY = [sys.executable, "-m", "celery", "-A", "config"]


def celery_worker_spawn(*, env: dict, log_path: Path, queues: str, name: str) -> subprocess.Popen:
    """Start a real Celery worker (its own process group) and wait until it says it is ready."""
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [*CELERY, "worker", "-Q", queues, "--concurrency", "1", "--pool", "prefork",
         "-n", f"{name}@%h", "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
        cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    log.close()  # the child holds its own copy
    deadline = time.monotonic() + WORKER_START_TIMEOUT
    while "ready." not in log_path.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"The Celery worker did not start:\n{log_path.read_text()[-4000:]}")
        time.sleep(0.25)
    proc.log_path = log_path
    return proc


def celery_worker_stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, training_storage_root, tmp_path_factory):
    """A real `celery -A config worker -Q default,gpu` on the test database and broker, for the session."""
    env = worker_env(training_storage_root)
    subprocess.run([*CELERY, "purge", "-f", "-Q", "default,gpu"], cwd=settings.BASE_DIR, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60, check=False)
    proc = celery_worker_spawn(env=env, log_path=tmp_path_factory.mktemp("celery") / "worker.log",
                               queues="default,gpu", name=f"test-{os.getpid()}")
    yield proc
    celery_worker_stop(proc)
