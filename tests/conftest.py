import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session", autouse=True)
def _services_are_real(django_db_setup, django_db_blocker):
    """In CI (FEEDBACKLOOP_REQUIRE_SERVICES=1) a missing PostgreSQL or Redis fails the run, never skips."""
    if not getattr(settings, "REQUIRE_SERVICES", False):
        return
    from django.core.cache import cache
    from django.db import connection

    with django_db_blocker.unblock():
        assert connection.vendor == "postgresql", f"CI must run on PostgreSQL, not {connection.vendor}"
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    assert "redis" in settings.CACHES["default"]["BACKEND"].lower(), "CI must use the Redis cache"
    cache.set("feedbackloop-ping", "pong", 10)
    assert cache.get("feedbackloop-ping") == "pong", "Redis did not answer"
    assert settings.CELERY_BROKER_URL.startswith("redis://"), "CI must use the Redis broker"


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    cache.clear()
    yield


def api_client_for(user) -> APIClient:
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def client_for():
    return api_client_for


# A real Celery worker --------------------------------------------------------------------------
# Tests that use it need @pytest.mark.django_db(transaction=True), so that the worker (another
# process, the same test database) sees committed rows. One worker serves the whole session.

WORKER_START_TIMEOUT = 60


@pytest.fixture(scope="session")
def training_storage_root(tmp_path_factory) -> Path:
    """One STORAGE_ROOT for the session, shared with the Celery worker through FEEDBACKLOOP_STORAGE_ROOT."""
    return tmp_path_factory.mktemp("storage")


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
        # The webhook tests' receivers listen on loopback, which the SSRF rules refuse by default; the
        # worker alone allows it (the test process keeps the default, so its refusal tests see it).
        FEEDBACKLOOP_WEBHOOKS_ALLOW_PRIVATE_NETWORKS="1",
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
