"""Settings for the ops console, read from environment variables.

See docs/configuration.md for every variable. A bad or missing value fails at start with one
line naming the variable (see opsconsole/env.py).
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from opsconsole.env import env_bool, env_choice, env_int, env_list, env_str, env_url
from opsconsole.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("OPSCONSOLE_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# The sandbox is the zero-setup embedded default started by `make run`: SQLite, a broker that
# needs no server, a generated secret key. Never set it on a real deployment.
SANDBOX = env_bool("OPSCONSOLE_SANDBOX", False)
DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        if len(key) < 32:
            raise ImproperlyConfigured("SECRET_KEY: must be at least 32 characters long")
        return key
    if not SANDBOX:
        raise ImproperlyConfigured("SECRET_KEY is required but not set (or set OPSCONSOLE_SANDBOX=1)")
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
# Old keys still accepted for signed data (sessions, CSRF) while rotating: docs/operations.md.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", [])
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if (SANDBOX or DEBUG) else [])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS is required but not set (comma-separated host names)")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "django_rq",
    "opsconsole.environments",
    "opsconsole.access",
    "opsconsole.audit",
    "opsconsole.runs",
    "opsconsole.ui",
    "deployments",
    "infrastructure",
    "backups",
    "dr",
    "notifications",
]

MIDDLEWARE = [
    "opsconsole.metrics_middleware.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "opsconsole.middleware.RequestIdMiddleware",
    "opsconsole.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "opsconsole.access.middleware.ApiTokenMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "opsconsole.middleware.UserTimezoneMiddleware",
    "opsconsole.audit.refusals.RefusalAuditMiddleware",  # innermost: it sees the view's own answer
]
# Django's storage, noting the errors a request added: how a page says no (audit.refusals).
MESSAGE_STORAGE = "opsconsole.audit.refusals.ErrorNotingStorage"

ROOT_URLCONF = "opsconsole.urls"
WSGI_APPLICATION = "opsconsole.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "builtins": ["opsconsole.ui.templatetags.console"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "opsconsole.ui.context.console",
            ],
        },
    },
]

_database_url = env_url(
    "DATABASE_URL",
    ("postgres", "postgresql", "sqlite"),
    default=f"sqlite:///{VAR_DIR / 'opsconsole.sqlite3'}",
)
DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60, conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# WhiteNoise serves static files from the app directories too, so no collectstatic step is
# needed to run the console; production builds still run collectstatic for compressed copies.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG or SANDBOX

# --- Queue: one dispatch seam, three backends -------------------------------------------------
REDIS_URL = env_url("REDIS_URL", ("redis", "rediss", "unix"))
OPSCONSOLE_QUEUE = env_choice("OPSCONSOLE_QUEUE", ("celery", "rq", "inline"), "celery")
if OPSCONSOLE_QUEUE == "rq" and not REDIS_URL:
    raise ImproperlyConfigured("REDIS_URL is required when OPSCONSOLE_QUEUE=rq")
if OPSCONSOLE_QUEUE == "celery" and not REDIS_URL and not SANDBOX:
    raise ImproperlyConfigured("REDIS_URL is required when OPSCONSOLE_QUEUE=celery (or set OPSCONSOLE_SANDBOX=1)")

if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
else:
    # Sandbox: kombu's filesystem transport needs no server; the same Celery code path runs.
    _broker_dir = VAR_DIR / "broker"
    for sub in ("in", "processed"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "in"),
        "data_folder_out": str(_broker_dir / "in"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

RQ_QUEUES = {"default": {"URL": REDIS_URL or "redis://127.0.0.1:6379/0", "DEFAULT_TIMEOUT": 6 * 3600}}

# Runs: how often a worker heartbeats, and after how long without one the reaper calls it lost.
RUN_HEARTBEAT_SECONDS = env_int("RUN_HEARTBEAT_SECONDS", 5, minimum=1)
RUN_LOST_AFTER_SECONDS = env_int("RUN_LOST_AFTER_SECONDS", 30, minimum=2)
REAPER_INTERVAL_SECONDS = env_int("REAPER_INTERVAL_SECONDS", 15, minimum=1)
RUN_RESEND_AFTER_SECONDS = env_int("RUN_RESEND_AFTER_SECONDS", 300, minimum=10)
if RUN_LOST_AFTER_SECONDS <= RUN_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured("RUN_LOST_AFTER_SECONDS: must be longer than RUN_HEARTBEAT_SECONDS")

# AWS (opsconsole/aws.py): the external ID sent with every AssumeRole of an environment's role_arn,
# for roles whose trust policy requires one (an sts:ExternalId condition); empty: none is sent.
AWS_ROLE_EXTERNAL_ID = env_str("AWS_ROLE_EXTERNAL_ID", "")
if AWS_ROLE_EXTERNAL_ID and not re.fullmatch(r"[\w+=,.@:/-]{2,1224}", AWS_ROLE_EXTERNAL_ID):
    raise ImproperlyConfigured(
        "AWS_ROLE_EXTERNAL_ID: expected 2 to 1224 letters, digits or any of _+=,.@:/- (what AssumeRole accepts)"
    )

# Deploys: how often the worker polls AWS while waiting (migrations, rollouts, bake alarms).
DEPLOY_POLL_MS = env_int("DEPLOY_POLL_MS", 5000, minimum=10)
# Blue/green: scale the old colour to 0 tasks once the new one has baked at 100% (copied into each
# run at launch). Off keeps it running for an instant shift back, at the cost of a second fleet.
BLUE_GREEN_SCALE_DOWN = env_bool("BLUE_GREEN_SCALE_DOWN", True)
# Deploy verification by Prometheus (docs/deployments.md): the server an environment's PromQL check
# asks when the environment names no URL of its own, and how long one query may take.
PROMETHEUS_URL = env_url("PROMETHEUS_URL", ("http", "https")) or ""
PROMETHEUS_TIMEOUT_SECONDS = env_int("PROMETHEUS_TIMEOUT_SECONDS", 10, minimum=1)
# ECR repositories whose tagged images "Sync from ECR" registers as releases: "region/name,...".
OPSCONSOLE_ECR_REPOSITORIES = env_list("OPSCONSOLE_ECR_REPOSITORIES", [])

# --- Backups (docs/backups.md) ----------------------------------------------------------------
# What a pg_dump policy's password_source may name: variables of the worker's environment whose
# name starts with BACKUP_PASSWORD_ENV_PREFIX, and Secrets Manager secrets whose name or ARN starts
# with one of BACKUP_PASSWORD_SECRET_PREFIXES (none unless set). The libpq sslmode of pg_dump,
# pg_restore and the worker's own connections to those databases (verify-full in production, with
# BACKUP_DB_SSLROOTCERT the CA bundle, e.g. RDS's).
BACKUP_PASSWORD_ENV_PREFIX = env_str("BACKUP_PASSWORD_ENV_PREFIX", "BACKUP_DB_PASSWORD_")
_console_secrets = ("SECRET_KEY", "DATABASE_URL", "EMAIL_HOST_PASSWORD", "METRICS_TOKEN", "AWS_SECRET_ACCESS_KEY")
if not re.fullmatch(r"[A-Z][A-Z0-9_]{2,}_", BACKUP_PASSWORD_ENV_PREFIX) or any(
    name.startswith(BACKUP_PASSWORD_ENV_PREFIX) for name in _console_secrets
):
    raise ImproperlyConfigured(
        "BACKUP_PASSWORD_ENV_PREFIX: expected capitals, digits and underscores ending in an underscore, that no "
        f"variable of the console's own starts with (e.g. BACKUP_DB_PASSWORD_), got {BACKUP_PASSWORD_ENV_PREFIX!r}"
    )
BACKUP_PASSWORD_SECRET_PREFIXES = env_list("BACKUP_PASSWORD_SECRET_PREFIXES", [])
BACKUP_DB_SSLMODE = env_choice(
    "BACKUP_DB_SSLMODE", ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"), "prefer"
)
BACKUP_DB_SSLROOTCERT = env_str("BACKUP_DB_SSLROOTCERT", "")

# --- Access ------------------------------------------------------------------------------------
LOGIN_FAILURES_ALLOWED = env_int("LOGIN_FAILURES_ALLOWED", 5, minimum=1)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 900, minimum=1)
# Proxies in front of the web process that each append to X-Forwarded-For (an ALB: 1). The client's
# address (audit log, sign-in throttling) is the one the outermost of them saw; 0: REMOTE_ADDR.
# Not /metrics: its allowlist always reads REMOTE_ADDR (opsconsole/clientip.py says why).
TRUSTED_PROXY_HOPS = env_int("TRUSTED_PROXY_HOPS", 0, minimum=0)
SUDO_MODE_SECONDS = env_int("SUDO_MODE_SECONDS", 600, minimum=30)
# API tokens live API_TOKEN_DEFAULT_DAYS unless their creator picks another lifetime, never more
# than API_TOKEN_MAX_DAYS (docs/security.md).
API_TOKEN_DEFAULT_DAYS = env_int("API_TOKEN_DEFAULT_DAYS", 90, minimum=1)
API_TOKEN_MAX_DAYS = env_int("API_TOKEN_MAX_DAYS", 365, minimum=1)
if API_TOKEN_MAX_DAYS < API_TOKEN_DEFAULT_DAYS:
    raise ImproperlyConfigured(
        f"API_TOKEN_MAX_DAYS: must be at least API_TOKEN_DEFAULT_DAYS ({API_TOKEN_DEFAULT_DAYS}), "
        f"got {API_TOKEN_MAX_DAYS}"
    )

# --- Metrics (docs/monitoring.md) -------------------------------------------------------------
# /metrics answers a request with `Authorization: Bearer <METRICS_TOKEN>` or from an address in
# METRICS_ALLOWED_IPS (addresses or CIDR networks, matched against REMOTE_ADDR); nobody else.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", [])
for _entry in METRICS_ALLOWED_IPS:
    try:
        ipaddress.ip_network(_entry, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_IPS: {_entry!r} is not an address or network") from None
if METRICS_TOKEN and len(METRICS_TOKEN) < 16:
    raise ImproperlyConfigured("METRICS_TOKEN: must be at least 16 characters long")

# --- Notifications (docs/monitoring.md) -------------------------------------------------------
# The console's address, for the links in notifications ("https://console.example.com").
OPSCONSOLE_BASE_URL = (env_url("OPSCONSOLE_BASE_URL", ("http", "https")) or "").rstrip("/")
# Email channels send through Django's mail backend: SMTP unless EMAIL_BACKEND says otherwise.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if SANDBOX else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "opsconsole@localhost")

# --- Security -------------------------------------------------------------------------------
SECURE_COOKIES = env_bool("SECURE_COOKIES", not (SANDBOX or DEBUG))
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 3600, minimum=60)
# htmx and the forms take the token from the page (hx-headers, csrf_token), so no script needs
# the cookie: keep it out of reach of one.
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if (SANDBOX or DEBUG) else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
# Preloading is a commitment for the whole domain, hard to undo: opt in, so W021 is expected.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

# LOG_FORMAT=json: one JSON object per line with request_id and run_id (opsconsole/logs.py), for
# a log collector. Plain text in the sandbox and under DEBUG, where a person reads the terminal.
LOG_FORMAT = env_choice("LOG_FORMAT", ("json", "plain"), "plain" if (SANDBOX or DEBUG) else "json")
LOGGING = logging_config(LOG_FORMAT, env_str("LOG_LEVEL", "INFO"))
