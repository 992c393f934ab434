"""Test settings. With FEEDBACKLOOP_REQUIRE_SERVICES=1 (CI) a missing PostgreSQL or Redis is a failure."""

import os

# Parallel test sessions on the filesystem broker each get their own folder; a worker started
# by a test inherits the variable and so reads the same one.
_var = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "var")
os.environ.setdefault("CELERY_BROKER_FOLDER", os.path.normpath(os.path.join(_var, f"celery-broker-test-{os.getpid()}")))

from .base import *  # noqa: E402,F401,F403
from .base import env

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
REQUIRE_SERVICES = env.bool("FEEDBACKLOOP_REQUIRE_SERVICES", default=False)

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not memory, so a Celery worker or gunicorn started by a test sees the same data.
    # One file per test process, so parallel runs never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}  # noqa: F405

# Live-server threads must not keep connections open, or PostgreSQL cannot drop the test database.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405

# Webhook retries wait 0.2 s, 0.4 s, ... instead of 30 s, 1 min, ...; an attempt gives up after 5 s.
WEBHOOKS_BACKOFF_SECONDS = env.float("FEEDBACKLOOP_WEBHOOKS_BACKOFF_SECONDS", default=0.2)
WEBHOOKS_TIMEOUT_SECONDS = env.float("FEEDBACKLOOP_WEBHOOKS_TIMEOUT_SECONDS", default=5.0)
