"""Settings shared by every environment. Everything that differs comes from the environment."""

from pathlib import Path

import environ

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
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
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
            ],
        },
    },
]

# Database: SQLite under var/ unless DATABASE_URL says otherwise.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'feedbackloop.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Writers queue on the database lock instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 30, "transaction_mode": "IMMEDIATE"})
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
        "annotation.api.authentication.CachedTokenAuthentication",
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
    },
}

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
# from it, instead of paying those imports in a cold subprocess per job (training/pipeline_process.py).
TRAINING_WARM_START = env.bool("FEEDBACKLOOP_WARM_START", default=True)
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
    "training.tasks.runs_fail_orphaned": {"queue": "default"},
    "training.tasks.snapshots_sweep_orphans": {"queue": "default"},
    "training.generation_tasks.generation_jobs_fail_orphaned": {"queue": "default"},
    "training.tasks.*": {"queue": "gpu"},
    "training.generation_tasks.*": {"queue": "gpu"},
    "training.scoring_tasks.*": {"queue": "gpu"},
}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE = {
    "fail-orphaned-runs": {"task": "training.tasks.runs_fail_orphaned", "schedule": 60.0},
    "fail-orphaned-generation-jobs": {
        "task": "training.generation_tasks.generation_jobs_fail_orphaned",
        "schedule": 60.0,
    },
    "sweep-orphaned-snapshot-files": {"task": "training.tasks.snapshots_sweep_orphans", "schedule": 3600.0},
}

# Files: dataset snapshots and model directories live under one storage root.
STORAGE_ROOT = Path(env("FEEDBACKLOOP_STORAGE_ROOT", default=str(VAR_DIR / "storage")))
BASE_MODEL = env("BASE_MODEL", default="tiny")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
}
