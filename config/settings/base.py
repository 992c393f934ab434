"""Settings shared by every environment. Everything that differs comes from the environment."""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-local-development-key-change-me")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "annotation",
    "training",
    "loop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # 413 for oversized bodies, 400 for NUL/surrogates in forms and query strings: config/middleware.py
    "config.middleware.InputGuardMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "annotation.context_processors.access",
            ],
        },
    },
]

# Database: SQLite under var/ unless DATABASE_URL says otherwise.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'feedbackloop.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Writers queue on the database lock instead of failing with "database is locked". The web
    # server, the Celery worker and beat share the file: in WAL mode readers never wait for a writer,
    # and a commit appends to the log instead of writing and deleting a rollback journal. (In the
    # rollback mode a full loop on a loaded machine once failed a commit with "disk I/O error", and
    # a labeler's lease was gone at submit.)
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "timeout": 30, "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    })
else:
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend, with the health check of a reused connection only after it sat idle.
        DATABASES["default"]["ENGINE"] = "config.postgresql"
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DJANGO_CONN_HEALTH_CHECKS", default=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cache: Redis when REDIS_URL is set (token lookups are cached there), else in-process memory.
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "project-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

# Uploads larger than this go to a temporary file, so imports stream from disk.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# The largest request body (JSON, form) read into memory; past it: 413 naming the limit (docs/limits.md).
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# The largest prompt import file accepted through the API or the import page (the CLI takes any size).
IMPORT_MAX_BYTES = env.int("FEEDBACKLOOP_IMPORT_MAX_BYTES", default=256 * 1024 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "annotation.api.negotiation.CachedContentNegotiation",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PARSER_CLASSES": [
        "annotation.api.parsers.JSONBodyParser",
        "annotation.api.parsers.FormBodyParser",
        "annotation.api.parsers.MultiPartBodyParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "annotation.api.pagination.ClampedLimitOffsetPagination",
    "PAGE_SIZE": 100,
    # ?format= names an export format, not a renderer.
    "URL_FORMAT_OVERRIDE": None,
    "EXCEPTION_HANDLER": "annotation.api.errors.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "FeedbackLoop API",
    "DESCRIPTION": "Collect demonstrations and comparisons, train SFT, reward, RLHF and DPO models.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The browsable API page uses the vendored Swagger UI, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "TaskKindEnum": "annotation.models.Task.Kind",
        "AnnotationKindEnum": "annotation.models.Annotation.Kind",
        "TrainingRunKindEnum": "training.models.TrainingRun.Kind",
        "ModelVersionKindEnum": "training.models.ModelVersion.Kind",
        "TrainingRunStatusEnum": "training.models.TrainingRun.Status",
        "ReviewStatusEnum": "annotation.models.ReviewItem.Status",
        "ReviewStateEnum": "annotation.models.Annotation.ReviewState",
        "VerdictEnum": "annotation.reviews.services.VERDICTS",
        "WebhookDeliveryStatusEnum": "webhooks.models.WebhookDelivery.Status",
        "WebhookEventTypeEnum": "webhooks.models.EventType",
    },
}

# Content-Security-Policy (django-csp): every script, style, font and request comes from this
# origin, nothing inline. Pages keep their data in json_script blocks and their styles in static/css;
# JavaScript may still set styles through the CSSOM (el.style.x), which the policy does not govern.
# img-src also allows data: URIs (the empty favicon, icons inside the vendored Swagger UI's CSS).
# The Swagger UI page (/api/docs/) loads its init script from its own URL (the split view).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
# Swagger UI would otherwise fetch a validator badge from outside, which img-src 'self' refuses.
# No deep links: Swagger UI draws each one as a link inside the operation's button, a control nested
# in a control that keyboard and screen-reader users cannot tell apart (axe's nested-interactive).
SPECTACULAR_SETTINGS["SWAGGER_UI_SETTINGS"] = {"deepLinking": False, "validatorUrl": None}

# Celery: kombu's filesystem transport under var/ unless CELERY_BROKER_URL says otherwise.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = Path(env("CELERY_BROKER_FOLDER", default=str(VAR_DIR / "celery-broker")))
    for _sub in ("out", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "data_folder_processed": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
    }
# A gpu worker keeps a warm launcher (torch, transformers and TRL imported) and forks each pipeline
# from it, instead of paying those imports in a cold subprocess per job (jobs/pipeline_process.py).
TRAINING_WARM_START = env.bool("FEEDBACKLOOP_WARM_START", default=True)
# Where a gpu worker runs a training run's pipeline: `local` (a process beside the worker) or `ray`
# (a job on the Ray cluster whose dashboard is RAY_ADDRESS, e.g. http://ray-head:8265). A run may
# choose either with its `executor` option. docs/ray.md.
PIPELINE_EXECUTOR = env("FEEDBACKLOOP_EXECUTOR", default="local")
RAY_ADDRESS = env("RAY_ADDRESS", default="")
# GPUs a Ray job asks for per training worker process: 0 on a CPU cluster, 1 where the nodes have GPUs.
RAY_GPUS_PER_WORKER = env.float("FEEDBACKLOOP_RAY_GPUS_PER_WORKER", default=0.0)
if PIPELINE_EXECUTOR not in ("local", "ray"):
    raise ImproperlyConfigured(f"FEEDBACKLOOP_EXECUTOR must be local or ray, not {PIPELINE_EXECUTOR!r}.")
if PIPELINE_EXECUTOR == "ray" and not RAY_ADDRESS:
    raise ImproperlyConfigured("FEEDBACKLOOP_EXECUTOR is ray, but RAY_ADDRESS (the Ray dashboard's URL) is not set.")
# The longest a training run may take before Celery stops it.
TRAINING_TIME_LIMIT_SECONDS = env.int("TRAINING_TIME_LIMIT_SECONDS", default=48 * 3600)
if CELERY_BROKER_URL.startswith("redis"):
    # Redis hands an unacknowledged message to another worker after this long. Training runs are
    # acks_late and may last days, so it must outlast the longest run, or a run would start twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": TRAINING_TIME_LIMIT_SECONDS + 3600,
    }
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    # Sweeps run on the default queue: a gpu worker (concurrency 1) is busy for a whole run.
    # Exact names win over the patterns below.
    "training.tasks.runs_recover_lost": {"queue": "default"},
    "training.tasks.snapshots_sweep_orphans": {"queue": "default"},
    "training.generation_tasks.generation_jobs_recover_lost": {"queue": "default"},
    "training.scoring_tasks.reward_checks_refresh": {"queue": "default"},
    "training.tasks.model_push": {"queue": "default"},  # an upload to the Hugging Face Hub needs no GPU
    "training.tasks.*": {"queue": "gpu"},
    "training.generation_tasks.*": {"queue": "gpu"},
    "training.scoring_tasks.*": {"queue": "gpu"},
    "annotation.tasks.*": {"queue": "default"},
}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE = {
    # Jobs whose worker is lost go back to the queue (jobs/recovery.py: every 20 s, lost after 60 s).
    "recover-lost-runs": {"task": "training.tasks.runs_recover_lost", "schedule": 20.0},
    "recover-lost-generation-jobs": {"task": "training.generation_tasks.generation_jobs_recover_lost", "schedule": 20.0},
    "sweep-orphaned-snapshot-files": {"task": "training.tasks.snapshots_sweep_orphans", "schedule": 3600.0},
    # Hub pushes whose worker died mid-upload end failed (annotation/hub_push_recovery.py).
    "end-lost-hub-pushes": {"task": "annotation.tasks.hub_pushes_end_lost", "schedule": 20.0},
}
# Label quality (docs/quality.md): how often changed projects are recomputed, and how many of a
# project's newest comparison judgments one run reads (it bounds the run's memory).
QUALITY_REFRESH_SECONDS = env.int("FEEDBACKLOOP_QUALITY_REFRESH_SECONDS", default=600)
# How long a labeler may undo their last submit (annotation/undo.py).
UNDO_SECONDS = env.int("FEEDBACKLOOP_UNDO_SECONDS", default=300)
QUALITY_MAX_JUDGMENTS = env.int("FEEDBACKLOOP_QUALITY_MAX_JUDGMENTS", default=200_000)
CELERY_BEAT_SCHEDULE["refresh-label-quality"] = {
    "task": "annotation.tasks.quality_refresh_all",
    "schedule": float(QUALITY_REFRESH_SECONDS),
}

# Is the reward model still right? (docs/quality.md): each reward model's agreement with the newest
# REWARD_CHECK_LABELS comparison labels on the current policy's samples, recomputed when it is older
# than REWARD_CHECK_REFRESH_SECONDS and new labels came in. The sweep looks every 10 minutes.
REWARD_CHECK_LABELS = env.int("FEEDBACKLOOP_REWARD_CHECK_LABELS", default=200)
REWARD_CHECK_REFRESH_SECONDS = env.int("FEEDBACKLOOP_REWARD_CHECK_REFRESH_SECONDS", default=6 * 3600)
CELERY_BEAT_SCHEDULE["refresh-reward-model-checks"] = {
    "task": "training.scoring_tasks.reward_checks_refresh",
    "schedule": 600.0,
}

# Files: dataset snapshots and model directories live under one storage root.
STORAGE_ROOT = Path(env("FEEDBACKLOOP_STORAGE_ROOT", default=str(VAR_DIR / "storage")))
BASE_MODEL = env("BASE_MODEL", default="tiny")
# Absolute folders under which users may register model directories (training/registry.py). The
# storage root is never one of them: run outputs are registered by the platform itself.
MODEL_ROOTS = env.list("FEEDBACKLOOP_MODEL_ROOTS", default=[])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
    # django-axes logs every reset of a login-failure count at INFO (each password set, each login);
    # its warnings (a lockout) still show.
    "loggers": {"axes": {"level": "WARNING"}},
}

# Accounts (docs/accounts.md): login lockout with django-axes, API token lifetime, email.
INSTALLED_APPS += ["axes", "accounts"]
# Last, so that it turns a lockout flagged anywhere in the request into the answer.
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_VERBOSE = False  # no banner on every manage.py command; lockouts are still logged
# Failures count per account (from any address) and per address (against any account).
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = env.int("FEEDBACKLOOP_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("FEEDBACKLOOP_LOGIN_COOLOFF_MINUTES", default=15))
if AXES_FAILURE_LIMIT < 1 or AXES_COOLOFF_TIME <= timedelta(0):
    raise ImproperlyConfigured("FEEDBACKLOOP_LOGIN_FAILURE_LIMIT and FEEDBACKLOOP_LOGIN_COOLOFF_MINUTES must be at least 1.")
# A success resets only the account's failures (accounts.services.login_failures_reset), and
# attempts made while locked out are not counted, so the announced retry time holds.
AXES_RESET_ON_SUCCESS = False
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_USERNAME_CALLABLE = "accounts.lockout.attempt_username"
# The client address: REMOTE_ADDR, or X-Forwarded-For read behind this many trusted proxies.
AXES_CLIENT_IP_CALLABLE = "accounts.client_ip.client_ip_address"
TRUSTED_PROXY_COUNT = env.int("FEEDBACKLOOP_TRUSTED_PROXIES", default=0)
# API tokens expire this many days after they were issued; 0: never.
TOKEN_TTL_DAYS = env.int("FEEDBACKLOOP_TOKEN_TTL_DAYS", default=0)
# Mail (password reset) is printed to the console; production sends it over SMTP.
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="FeedbackLoop <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Webhooks (docs/webhooks.md): who may receive them, how long an attempt may take, and the retries.
INSTALLED_APPS += ["webhooks"]
# Loopback, private and shared addresses (and this platform's own host on them) may receive webhooks.
WEBHOOKS_ALLOW_PRIVATE_NETWORKS = env.bool("FEEDBACKLOOP_WEBHOOKS_ALLOW_PRIVATE_NETWORKS", default=False)
WEBHOOKS_TIMEOUT_SECONDS = env.float("FEEDBACKLOOP_WEBHOOKS_TIMEOUT_SECONDS", default=10.0)
WEBHOOKS_MAX_ATTEMPTS = env.int("FEEDBACKLOOP_WEBHOOKS_MAX_ATTEMPTS", default=5)
# Attempt n (from 1) waits BACKOFF * 2**(n-1) seconds before the next: 30 s, 1 min, 2 min, 4 min.
WEBHOOKS_BACKOFF_SECONDS = env.float("FEEDBACKLOOP_WEBHOOKS_BACKOFF_SECONDS", default=30.0)
# https receivers' certificates are checked against this PEM file's CAs; empty: the system's trusted CAs.
WEBHOOKS_CA_BUNDLE = env("FEEDBACKLOOP_WEBHOOKS_CA_BUNDLE", default="")
# After a secret rotation the old secret signs beside the new one for this long (0: not at all).
WEBHOOKS_ROTATION_GRACE_HOURS = env.float("FEEDBACKLOOP_WEBHOOKS_ROTATION_GRACE_HOURS", default=24.0)
if WEBHOOKS_ROTATION_GRACE_HOURS < 0:
    raise ImproperlyConfigured("FEEDBACKLOOP_WEBHOOKS_ROTATION_GRACE_HOURS must be 0 or more.")
CELERY_TASK_ROUTES["webhooks.*"] = {"queue": "default"}
CELERY_TASK_ROUTES["loop.evaluation_completion_check"] = {"queue": "default"}  # evaluation.completed
CELERY_BEAT_SCHEDULE["resume-overdue-webhook-deliveries"] = {"task": "webhooks.deliveries_resume", "schedule": 60.0}
