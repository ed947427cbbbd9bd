"""Django settings for the controller; every knob comes from a DEIS_* environment variable."""

import os
import secrets
from pathlib import Path

import dj_database_url

from deis import API_VERSION, files


def _default_data_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/deis")
    return Path.home() / ".local" / "share" / "deis"


DATA_DIR = Path(os.environ.get("DEIS_DATA_DIR") or _default_data_dir())
files.private(DATA_DIR)  # umask 077 for every Django process; the data directory 0700


def _persistent_secret(name: str, env: str) -> str:
    """A secret from the environment, else one generated once and kept in the data directory."""
    if os.environ.get(env):
        return os.environ[env]
    path = DATA_DIR / name
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(value + "\n")
        return value


SECRET_KEY = _persistent_secret("secret_key", "DEIS_SECRET_KEY")
# The shared key builders present in X-Deis-Builder-Auth when they call the hooks.
BUILDER_KEY = _persistent_secret("builder_key", "DEIS_BUILDER_KEY")

DEBUG = os.environ.get("DEIS_DEBUG", "") == "1"
ALLOWED_HOSTS = ["*"]

# Apps are served at <app>.<PLATFORM_DOMAIN>.
PLATFORM_DOMAIN = os.environ.get("DEIS_PLATFORM_DOMAIN", "localhost")
# enabled | disabled | admin_only. Registering never makes an admin (see "Accounts" below).
REGISTRATION_MODE = os.environ.get("DEIS_REGISTRATION_MODE", "enabled")
# App names that would collide with the platform's own host names or components.
RESERVED_NAMES = {
    "deis", "controller", "builder", "router", "registry", "logger", "store", "scheduler",
    "api", "admin", "git", "www", "healthz", "apps", "v1", "v2", "localhost",
}
# Request bodies larger than this are answered 413 (certificates are the largest legitimate ones).
MAX_BODY_BYTES = int(os.environ.get("DEIS_MAX_BODY_BYTES", str(1024 * 1024)))
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_BODY_BYTES
# Which scheduler backend runs releases ("none" until the Docker backend exists).
SCHEDULER_BACKEND = os.environ.get("DEIS_SCHEDULER", "none")
DEFAULT_LOG_LINES = 100
LOG_DIR = DATA_DIR / "logs" / "apps"  # deis/logger's store: one file per app
RELEASE_PHASE_TIMEOUT = float(os.environ.get("DEIS_RELEASE_PHASE_TIMEOUT", "600"))
RECONCILE_INTERVAL = float(os.environ.get("DEIS_RECONCILE_INTERVAL", "10"))
# The deployer: apps rolled out at once, and one-offs (`deis run`) run at once on the platform.
DEPLOY_WORKERS = max(1, int(os.environ.get("DEIS_DEPLOY_WORKERS", "4")))
JOB_WORKERS = max(1, int(os.environ.get("DEIS_JOB_WORKERS", "8")))
# One-offs a user may have queued or running at once (429 beyond), and v1 clients that may wait
# for one within a request at once, platform-wide (each holds a request worker meanwhile).
JOBS_PER_USER = max(1, int(os.environ.get("DEIS_JOBS_PER_USER", "3")))
WAITED_JOBS = max(0, int(os.environ.get("DEIS_WAITED_JOBS", "1")))
JOB_OUTPUT_LIMIT = 1 << 20  # bytes of a one-off's output the controller keeps (the newest)
# The router (HAProxy) the controller configures; `deis-platform up` starts it on these ports.
ROUTER_HTTP_PORT = int(os.environ.get("DEIS_ROUTER_PORT", "80"))
ROUTER_HTTPS_PORT = int(os.environ.get("DEIS_ROUTER_HTTPS_PORT", "443"))
# A router reconciler (`python -m deis.controller route`) serves the routes the database holds;
# without one (tools, some tests) the deployer and the API change this host's router themselves.
ROUTER_RECONCILER = os.environ.get("DEIS_ROUTER_RECONCILER") == "1"

# --- Input limits: what the API refuses (4xx) before the engine or the router would ---------------
from deis import rules  # noqa: E402  (Django-free: the rules every component shares)

# JSON bodies (and JSON strings inside them) nested deeper than this are answered 400.
MAX_JSON_DEPTH = max(2, int(os.environ.get("DEIS_MAX_JSON_DEPTH", str(rules.MAX_JSON_DEPTH))))
# Entries an app's config may hold (values; and memory, cpu, tags each), and the bytes of
# environment its values make (KEY=value and a NUL each; Linux's limit for all of it is ~2 MiB).
MAX_CONFIG_VALUES = max(1, int(os.environ.get("DEIS_MAX_CONFIG_VALUES", "1000")))
MAX_CONFIG_BYTES = max(1024, int(os.environ.get("DEIS_MAX_CONFIG_BYTES", str(512 * 1024))))
# The largest memory limit (API form, like 16G, or bytes); by default this host's memory.
MAX_MEMORY = rules.size_setting(os.environ.get("DEIS_MAX_MEMORY")) or rules.host_memory() or (1 << 40)
# Processes an app may be scaled to (all types together), and all the apps a user owns together.
MAX_PROCESSES_PER_APP = max(0, int(os.environ.get("DEIS_MAX_PROCESSES_PER_APP", "100")))
MAX_PROCESSES_PER_USER = max(0, int(os.environ.get("DEIS_MAX_PROCESSES_PER_USER", "200")))

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "deis.controller.api",
]

MIDDLEWARE = [
    "deis.controller.api.middleware.BodySizeLimitMiddleware",
    "deis.controller.api.middleware.APIVersionMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "deis.controller.urls"
WSGI_APPLICATION = "deis.controller.wsgi.application"
APPEND_SLASH = False

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(DATA_DIR / "controller.sqlite3"),
        # Keep each thread's connection: opening one (and its PRAGMAs) cost ~2 ms a request.
        "CONN_MAX_AGE": 60,
        "OPTIONS": {
            # Writers queue up instead of failing, and take the write lock at BEGIN so that
            # read-modify-write sequences (release numbering, config merges) never interleave.
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
}
if os.environ.get("DATABASE_URL"):
    DATABASES["default"] = dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Server-side binding lets psycopg prepare the statements every request repeats.
        DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"

# --- Accounts: password rules, login throttling, token expiry, the one-time admin token ---------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": int(os.environ.get("DEIS_PASSWORD_MIN_LENGTH", "8"))}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# After LOGIN_FAILURES failed logins within LOGIN_WINDOW seconds, for one username or from one
# client address, logins answer 429 (Retry-After) until the window passes.
LOGIN_FAILURES = max(1, int(os.environ.get("DEIS_LOGIN_FAILURES", "5")))
LOGIN_WINDOW = max(1, int(os.environ.get("DEIS_LOGIN_WINDOW", "300")))
# Seconds a token lives after it is made (login, regenerate, password change); 0: for ever.
TOKEN_TTL = max(0, int(os.environ.get("DEIS_TOKEN_TTL", "0")))
# The hash of the one-time admin token `deis-platform up` prints while there is no admin.
ADMIN_TOKEN_FILE = DATA_DIR / "admin_token"
# The login counters are shared by every gunicorn worker: files in the data directory (0700).
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "accounts": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(DATA_DIR / "cache"),
        "TIMEOUT": None,
        # Culling drops random entries (counters among them): keep it out of an attacker's reach.
        "OPTIONS": {"MAX_ENTRIES": 1_000_000},
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["deis.controller.api.authentication.ExpiringTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "deis.controller.api.parsers.JSONParser",  # bounded depth, valid Unicode, no NUL
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "deis.controller.api.pagination.Pagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "deis.controller.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%SZ",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Deis controller API",
    "VERSION": API_VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DEIS_LOG_LEVEL", "WARNING")},
}
