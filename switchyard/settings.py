"""Settings, all from the environment (see README "Configuration").

Nothing set means the embedded single-machine default: a SQLite file and a Redis that Switchyard
starts itself on a unix socket under ``var/``. Bad values do not crash the import: they are kept
in ``SETTINGS_ERRORS`` and reported by the ``switchyard.E0xx`` system checks.
"""

import hashlib
from pathlib import Path

from switchyard import env

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env.envstr("SWITCHYARD_VAR_DIR", str(BASE_DIR / "var")))

SETTINGS_ERRORS: list[tuple[str, str]] = []  # (check id, message)


def _read(check_id, helper, name, default, *args):
    try:
        return helper(name, default, *args)
    except (ValueError, OSError) as exc:
        SETTINGS_ERRORS.append((check_id, str(exc)))
        return default


DEV_SECRET_KEY = "switchyard-insecure-development-key-change-me"
SECRET_KEY = _read("switchyard.E001", env.envsecret, "SECRET_KEY", "") or DEV_SECRET_KEY
DEBUG = _read("switchyard.E002", env.envbool, "DEBUG", False)
ALLOWED_HOSTS = env.envlist("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.envlist("CSRF_TRUSTED_ORIGINS", [])
# only behind a proxy that sets it: otherwise clients could forge their audited address
TRUST_X_FORWARDED_FOR = _read("switchyard.E006", env.envbool, "TRUST_X_FORWARDED_FOR", False)

# --- database -------------------------------------------------------------------------------
DATABASE_URL = env.envstr("DATABASE_URL", f"sqlite:///{VAR_DIR / 'switchyard.sqlite3'}")
try:
    _db = env.parse_database_url(DATABASE_URL, base_dir=str(BASE_DIR))
except ValueError as exc:
    SETTINGS_ERRORS.append(("switchyard.E003", str(exc)))
    _db = env.parse_database_url(f"sqlite:///{VAR_DIR / 'switchyard.sqlite3'}")
if _db["ENGINE"].endswith("sqlite3"):
    # Web, worker and beat share the file: wait for locks and take them up front.
    _db["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # a file, not memory, so worker processes started by end-to-end tests see the test data
    _db["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
    VAR_DIR.mkdir(parents=True, exist_ok=True)
# A pool of Postgres connections per process (Django's psycopg_pool support), for the web
# server: under ASGI every request in flight runs its sync code on a thread of its own, with a
# connection of its own, so without a pool each request connects anew and a burst opens as many
# connections as requests (Postgres' max_connections then refuses them). DATABASE_POOL_MAX
# (0: off) is set for the web processes by `manage.py demo`, the benchmarks and
# docker-compose.yml; requests beyond it wait up to DATABASE_POOL_TIMEOUT seconds for one.
DATABASE_POOL_MAX = _read("switchyard.E014", env.envint, "DATABASE_POOL_MAX", 0)
if DATABASE_POOL_MAX > 0 and _db["ENGINE"].endswith("postgresql"):
    _db.setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_MAX,
        "timeout": _read("switchyard.E014", env.envint, "DATABASE_POOL_TIMEOUT", 10),
    }
# Persistent connections instead (Django's CONN_MAX_AGE, seconds), for the threaded WSGI server
# (gunicorn gthread): a thread serves one request after another and keeps its connection, so
# the connections number the threads, not the requests in flight. Not with the pool.
DATABASE_CONN_MAX_AGE = _read("switchyard.E014", env.envint, "DATABASE_CONN_MAX_AGE", 0)
if DATABASE_CONN_MAX_AGE > 0 and "pool" in _db.get("OPTIONS", {}):
    SETTINGS_ERRORS.append(
        ("switchyard.E014", "DATABASE_CONN_MAX_AGE and DATABASE_POOL_MAX cannot both be set")
    )
elif DATABASE_CONN_MAX_AGE > 0:
    _db["CONN_MAX_AGE"] = DATABASE_CONN_MAX_AGE
    _db["CONN_HEALTH_CHECKS"] = True  # a connection Postgres dropped is replaced, not a 500
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- redis: broker, channel layer -------------------------------------------------------------
EMBEDDED_REDIS_SOCKET = VAR_DIR / "redis.sock"
REDIS_URL = env.envstr("REDIS_URL", "") or f"unix://{EMBEDDED_REDIS_SOCKET}"
REDIS_EMBEDDED = not env.envstr("REDIS_URL", "")
if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    SETTINGS_ERRORS.append(
        (
            "switchyard.E004",
            f"REDIS_URL must start with redis://, rediss:// or unix://, got {REDIS_URL!r}",
        )
    )


def _celery_url(url: str) -> str:
    if url.startswith("unix://"):
        path, _, query = url[len("unix://") :].partition("?")
        return f"redis+socket://{path}" + (f"?{query}" if query else "")
    return url


CELERY_BROKER_URL = _celery_url(REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 120}
CELERY_TASK_ALWAYS_EAGER = False
SWEEP_INTERVAL = float(_read("switchyard.E005", env.envint, "SWEEP_INTERVAL_SECONDS", 5))
# request samples for the dashboard's live charts (targets without an active deployment are
# sampled less often: releases.live.charts.IDLE_INTERVAL)
METRICS_INTERVAL = 2.0
CELERY_BEAT_SCHEDULE = {
    "sweep": {"task": "releases.tasks.sweep", "schedule": SWEEP_INTERVAL},
    "flag-plans": {"task": "flags.tasks.advance_plans", "schedule": SWEEP_INTERVAL},
    "flag-experiments": {"task": "flags.tasks.look_experiments", "schedule": 30.0},
    "flag-prune-counts": {"task": "flags.tasks.prune_counts", "schedule": 3600.0},
    "sample-metrics": {
        "task": "releases.tasks.sample_metrics",
        "schedule": METRICS_INTERVAL,
        "options": {"expires": METRICS_INTERVAL},  # a late round is dropped, not queued up
    },
}

# An idle consumer waits in BZPOPMIN for channels-redis' ``brpop_timeout`` (5 s). redis-py 8 reads
# with a 5 s socket timeout by default (it used to wait forever), so every idle read timed out and
# the live pages dropped every ~5 s. The socket timeout must outlast the blocking pop; it stays
# finite so that a dead Redis is still noticed. tests/e2e/test_live_idle.py keeps a socket idle.
CHANNEL_LAYER_SOCKET_TIMEOUT = 15.0

# /metrics wants `Authorization: Bearer <it>` when set (switchyard.E012 when exposed without)
METRICS_TOKEN = env.envsecret("SWITCHYARD_METRICS_TOKEN", "")

# --- the audit trail's signed checkpoints (releases.audit.checkpoints; docs/audit.md) -----------
AUDIT_CHECKPOINT_KEY = _read("switchyard.E008", env.envsecret, "SWITCHYARD_AUDIT_KEY", "")
AUDIT_CHECKPOINTS = env.envstr("SWITCHYARD_AUDIT_CHECKPOINTS", "")  # a path, file://, s3://
AUDIT_S3_ENDPOINT_URL = env.envstr("SWITCHYARD_AUDIT_S3_ENDPOINT_URL", "")  # e.g. MinIO
AUDIT_CHECKPOINT_EVERY = float(
    _read("switchyard.E009", env.envint, "SWITCHYARD_AUDIT_CHECKPOINT_SECONDS", 3600)
)
if AUDIT_CHECKPOINTS:
    CELERY_BEAT_SCHEDULE["audit-checkpoint"] = {
        "task": "releases.tasks.audit_checkpoint",
        "schedule": AUDIT_CHECKPOINT_EVERY,
    }

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "switchyard.channel_layer.ChannelLayer",  # a pool that waits: see there
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,
                    "socket_timeout": CHANNEL_LAYER_SOCKET_TIMEOUT,
                    "socket_connect_timeout": 5.0,
                }
            ],
            "capacity": 1000,
            "expiry": 30,
        },
    }
}

# --- the local fleet (embedded deployment target) ---------------------------------------------
FLEET_URL = env.envstr("FLEET_URL", "http://127.0.0.1:8765")
FLEET_TOKEN_GIVEN = bool(env.envsecret("FLEET_TOKEN", ""))  # (else derived from SECRET_KEY)
FLEET_TOKEN = (
    env.envsecret("FLEET_TOKEN", "")
    or hashlib.sha256(f"fleet:{SECRET_KEY}".encode()).hexdigest()[:40]
)

# --- AWS (integrations.aws, docs/aws.md): names only; credentials come from the default chain
AWS_REGION = env.envstr("AWS_REGION", "") or env.envstr("AWS_DEFAULT_REGION", "us-east-1")
AWS_PROFILE = env.envstr("SWITCHYARD_AWS_PROFILE", "")  # a named profile of the shared config
AWS_ROLE_ARN = env.envstr("SWITCHYARD_AWS_ROLE_ARN", "")  # a role to assume through STS
AWS_ENDPOINT_URL = env.envstr("SWITCHYARD_AWS_ENDPOINT_URL", "")  # e.g. a moto server
AWS_CONNECT_TIMEOUT = env.envint("AWS_CONNECT_TIMEOUT", 3)
AWS_READ_TIMEOUT = env.envint("AWS_READ_TIMEOUT", 10)
AWS_MAX_ATTEMPTS = env.envint("AWS_MAX_ATTEMPTS", 3)
# --- kubernetes targets: contexts are looked up in this kubeconfig (credentials stay out of the DB)
KUBERNETES_KUBECONFIG = env.envstr("KUBERNETES_KUBECONFIG", "")  # "": $KUBECONFIG, ~/.kube/config
KUBERNETES_TIMEOUT = float(env.envint("KUBERNETES_TIMEOUT", 5))  # seconds, every API call

# --- canary analysis ----------------------------------------------------------------------------
# where analysis templates' prometheus metrics query by default (a metric's "address" wins)
PROMETHEUS_URL = env.envstr("PROMETHEUS_URL", "")

# --- notifications and chat-ops (the notifications app) -----------------------------------------
# absolute links in messages; the Slack app's signing secret (chat-ops refused when unset)
SWITCHYARD_PUBLIC_URL = env.envstr("SWITCHYARD_PUBLIC_URL", "http://127.0.0.1:8000")
SLACK_SIGNING_SECRET = env.envsecret("SLACK_SIGNING_SECRET", "")
SLACK_API_URL = env.envstr("SLACK_API_URL", "https://slack.com/api/")  # tests: a loopback fake
SLACK_BOT_TOKEN = env.envsecret("SLACK_BOT_TOKEN", "")  # chat-ops: users.info for verified emails
NOTIFY_SECRETS_KEY = env.envsecret("NOTIFY_SECRETS_KEY", "")  # Fernet key(s); default: SECRET_KEY
NOTIFY_TIMEOUT = float(_read("switchyard.E080", env.envint, "NOTIFY_TIMEOUT_SECONDS", 5))
EMAIL_HOST = env.envstr("EMAIL_HOST", "localhost")
EMAIL_PORT = _read("switchyard.E081", env.envint, "EMAIL_PORT", 25)
EMAIL_HOST_USER = env.envstr("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env.envsecret("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _read("switchyard.E082", env.envbool, "EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _read("switchyard.E083", env.envbool, "EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = NOTIFY_TIMEOUT
DEFAULT_FROM_EMAIL = env.envstr("DEFAULT_FROM_EMAIL", "switchyard@localhost")
CELERY_BEAT_SCHEDULE["notifications-sweep"] = {
    "task": "notifications.sweep",
    "schedule": SWEEP_INTERVAL,
    "options": {"queue": "notify", "expires": SWEEP_INTERVAL},
}

# --- django -----------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "ninja",  # serves the API docs' Swagger UI from static files (no CDN)
    "switchyard",
    "releases",
    "notifications",
    "flags",  # feature flags: Unleash client API and OFREP for SDKs
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "releases.governance.security.SecurityHeadersMiddleware",  # CSP, Permissions-Policy
    "releases.api.boundary.RejectNulMiddleware",  # a NUL in a path would be a 500 on Postgres
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# benchmarks only (bench/api.py): each response says how many SQL queries it made
if env.envbool("SWITCHYARD_COUNT_QUERIES", False):
    MIDDLEWARE.insert(0, "switchyard.querycount.QueryCountMiddleware")

ROOT_URLCONF = "switchyard.urls"
ASGI_APPLICATION = "switchyard.asgi.application"
WSGI_APPLICATION = None

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
            ]
        },
    }
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "board"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"

SESSION_COOKIE_HTTPONLY = True
# Secure (HTTPS-only) cookies whenever Switchyard is reachable beyond this machine and not in
# DEBUG; on loopback (the one-machine demo over plain HTTP) they stay off unless SECURE_COOKIES
# says otherwise.
_EXPOSED = bool(set(ALLOWED_HOSTS) - {"localhost", "127.0.0.1", "[::1]", "testserver"})
SESSION_COOKIE_SECURE = not DEBUG and _read(
    "switchyard.E007", env.envbool, "SECURE_COOKIES", _EXPOSED
)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True  # pages send the token from the form, never from script
SESSION_COOKIE_AGE = 12 * 3600  # a working day; sign in again tomorrow
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# HSTS on HTTPS responses once cookies are secure (Django sends it only over HTTPS)
SECURE_HSTS_SECONDS = 31_536_000 if SESSION_COOKIE_SECURE else 0
CONTENT_SECURITY_POLICY = True  # releases.governance.security.SecurityHeadersMiddleware
# sign-in throttling (releases.governance.security): failures per username and address in a window
AUTHENTICATION_BACKENDS = ["releases.governance.security.ThrottledModelBackend"]
LOGIN_MAX_FAILURES = 5
LOGIN_FAILURE_WINDOW = 15 * 60
LOGIN_MAX_FAILURES_PER_ADDRESS = 50

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.envstr("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},  # one line per fleet call drowns the reconcile log
    },
}
