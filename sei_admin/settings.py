"""Settings for SEI Administration: every deployment knob is an environment variable.

The README lists each variable this module reads, with its default; a test
keeps that table, ``docker-compose.yml`` and this file in agreement.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import environ
from celery.schedules import crontab
from cryptography.fernet import Fernet
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from sei_admin import dev_secrets

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# ------------------------------------------------------------------------------
# Core
# ------------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
VAR_DIR = Path(env.str("SEI_VAR_DIR", default=str(BASE_DIR / "var")))

# Development runs may generate their own secrets; anything else must be given them.
_generated = dev_secrets.load_or_create(VAR_DIR / "dev-secrets.env") if DEBUG else {}


def _required_secret(name: str) -> str:
    value = env.str(name, default="") or _generated.get(name, "")
    if not value:
        raise ImproperlyConfigured(
            f"{name} is not set. Outside development (DJANGO_DEBUG=false) it must be "
            "given in the environment; see the README's table of environment variables."
        )
    return value


SECRET_KEY = _required_secret("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "health_check",
    "csp",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "activity",
    "smtp_settings",
    "accounts",
    "alerting",
    # After smtp_settings, whose send_queued_mail command replaces post_office's.
    "post_office",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Tells each request whether its session passed the second factor (user.is_verified()).
    "django_otp.middleware.OTPMiddleware",
    "sei_admin.middleware.SessionLifetimeMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "sei_admin.middleware.SecurityHeadersMiddleware",
    # Last, as django-axes asks: it turns a lock-out into its page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "sei_admin.urls"
WSGI_APPLICATION = "sei_admin.wsgi.application"

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
                "sei_admin.context_processors.session",
                "smtp_settings.context_processors.mail_banners",
            ],
        },
    },
]

# ------------------------------------------------------------------------------
# Database: SQLite under var/ unless DATABASE_URL names another
# ------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'sei_admin.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Web, worker processes and beat write at once: wait for the lock instead of failing,
    # take it at BEGIN (no deadlock on upgrade), and let readers go on during writes.
    # In WAL mode, synchronous=NORMAL syncs at checkpoints rather than at every commit
    # (a validation step is one commit): still never corrupt, and a power cut can lose
    # only the last moments' commits.
    # Its transactions wait for the lock by trying every 0.1 ms (sei_admin/sqlite_writers).
    DATABASES["default"]["ENGINE"] = "sei_admin.sqlite_writers"
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # A file, not memory, so that a test can hand the database to a worker process.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DJANGO_CONN_MAX_AGE", default=0))
# The worker's connections outlive a task (sei_admin.celery): a Validate run otherwise opens
# one for its claim, each one a connection and, on PostgreSQL, an authentication.
SEI_WORKER_CONN_MAX_AGE = env.int("SEI_WORKER_CONN_MAX_AGE", default=60)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ------------------------------------------------------------------------------
# Authentication
# ------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    # Refuses sign-in while a user and address are locked out, and counts failures.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# After this many failed sign-ins for one user from one address, that pair waits.
AXES_FAILURE_LIMIT = env.int("SEI_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("SEI_LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Sign-ins are logged by accounts.signin_activity; axes' own lines mask who and where.
AXES_VERBOSE = False
# Masked in what axes keeps of a failed attempt's form: who, where, the code typed at the
# second step (a near miss of a backup code would tell much about the real one), and the
# Change password form's fields (a wrong current password there counts as a failure).
AXES_SENSITIVE_PARAMETERS = [
    "username",
    "ip_address",
    "code",
    "old_password",
    "new_password1",
    "new_password2",
]
# Administrators must set up two-factor sign-in (an authenticator app) before they may use
# any page under Administration; development mode lets them skip it.
SEI_REQUIRE_2FA = env.bool("SEI_REQUIRE_2FA", default=not DEBUG)
# What authenticator apps show beside the account name.
OTP_TOTP_ISSUER = "SEI Administration"
# While nothing is configured, Manage SMTP opens the Set up Microsoft 365 assistant instead
# of an empty form, once per session (the assistant links back to the form).
SEI_SETUP_ASSISTANT_FIRST = env.bool("SEI_SETUP_ASSISTANT_FIRST", default=True)
# A sign-in waiting for its code is forgotten after this long.
SEI_SIGNIN_CODE_MINUTES = 5
# A reset link works once (it is bound to the password it replaces) and for an hour.
PASSWORD_RESET_TIMEOUT = 3600
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# ------------------------------------------------------------------------------
# Internationalisation, static files
# ------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# Outbox attachments; never served by the console.
MEDIA_ROOT = VAR_DIR / "media"
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Hashed names need `collectstatic`, which deployments run and development skips.
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env.bool("DJANGO_STATIC_MANIFEST", default=not DEBUG)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Without collectstatic (development, tests) whitenoise serves straight from the finders.
WHITENOISE_USE_FINDERS = env.bool("DJANGO_WHITENOISE_USE_FINDERS", default=DEBUG)
WHITENOISE_AUTOREFRESH = DEBUG

# ------------------------------------------------------------------------------
# Security: strict unless DEBUG; each knob can be set for a proxy setup
# ------------------------------------------------------------------------------
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
# Sessions are read from the shared cache and written through to the database: no session
# query on a page view, and nothing lost when the cache is cleared.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
# Health probes come over plain HTTP from inside the deployment.
SECURE_REDIRECT_EXEMPT = [r"^healthz"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
DEFAULT_EXCEPTION_REPORTER_FILTER = "sei_admin.reporting.AlwaysSafeExceptionReporterFilter"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Scripts and styles come only from our own static files: no inline code, no eval.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [NONE],
        "object-src": [NONE],
        "report-uri": "/csp-report/",
    }
}
# A signed-in session ends after this long without a request, and this long after sign-in.
SEI_SESSION_IDLE_MINUTES = env.int("SEI_SESSION_IDLE_MINUTES", default=30)
SEI_SESSION_MAX_HOURS = env.int("SEI_SESSION_MAX_HOURS", default=12)
SESSION_COOKIE_AGE = SEI_SESSION_MAX_HOURS * 3600
if env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# ------------------------------------------------------------------------------
# Secret encryption at rest
# ------------------------------------------------------------------------------


def _encryption_keys(raw: str) -> list[str]:
    keys = [key.strip() for key in raw.split(",") if key.strip()]
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError) as exc:
            raise ImproperlyConfigured(
                f"SEI_ENCRYPTION_KEYS: key number {position} is not a Fernet key "
                "(32 url-safe base64-encoded bytes). Create one with: python -c "
                '"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
            ) from exc
    return keys


SEI_ENCRYPTION_KEYS = _encryption_keys(_required_secret("SEI_ENCRYPTION_KEYS"))

# ------------------------------------------------------------------------------
# Celery: Redis when REDIS_URL is set, otherwise a broker on the file system
# ------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
else:
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "control", "processed"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    # The host part is ignored; naming one spares a kombu warning at every start.
    CELERY_BROKER_URL = "filesystem://localhost/"
    # kombu's file-system transport, writing each message whole before a reader can see it.
    CELERY_BROKER_TRANSPORT = "sei_admin.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        # A put rings every worker's bell (sei_admin.doorbell), so an idle worker takes a
        # message at once; this is how long one waits for a worker that missed its bell (a
        # busy worker reads it and looks again only after this). A directory listing 100
        # times a second costs an idle worker about 2% of a core (measured); Redis pushes
        # instead, and is what several machines use.
        "polling_interval": 0.01,
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True


# ------------------------------------------------------------------------------
# Cache: one for web, worker and beat together. Rate limits then hold across processes,
# and a run page hears of the worker's progress without reading the database.
# ------------------------------------------------------------------------------
def _cache_url(broker: str) -> str:
    """The broker's Redis server, one database further: clearing the cache must never
    empty the broker's queues."""
    parts = urlsplit(broker)
    number = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(number + 1) % 16}"))


# Run pages' status requests that may wait for the worker at once in one web process
# (each holds a thread): half of gunicorn's threads by default, so pages always get some.
SEI_LONG_POLLS_PER_PROCESS = env.int(
    "SEI_LONG_POLLS_PER_PROCESS", default=max(1, env.int("SEI_WEB_THREADS", default=8) // 2)
)
SEI_CACHE_URL = env.str("SEI_CACHE_URL", default=_cache_url(REDIS_URL) if REDIS_URL else "")
if SEI_CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": SEI_CACHE_URL,
            "KEY_PREFIX": "sei",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="sei-admin")
# Work someone waits for (Validate runs, the setup assistant's checks, "Run health check
# now") and the worker's heartbeat get a queue of their own: outbox delivery never fills it,
# so a click is not behind a backlog. Every worker consumes both (no -Q needed).
SEI_INTERACTIVE_QUEUE = env.str(
    "SEI_INTERACTIVE_QUEUE", default=f"{CELERY_TASK_DEFAULT_QUEUE}-interactive"
)
CELERY_TASK_QUEUES = tuple(
    Queue(name, Exchange(name), routing_key=name)
    for name in (SEI_INTERACTIVE_QUEUE, CELERY_TASK_DEFAULT_QUEUE)
)
CELERY_TASK_ROUTES = {
    name: {"queue": SEI_INTERACTIVE_QUEUE}
    for name in (
        "smtp_settings.tasks.validate_smtp_settings",
        "smtp_settings.tasks.mail_health_check",
        "smtp_settings.tasks.worker_heartbeat",
    )
}
# A worker reserves one message per process: a busy worker must not hold a Validate run
# that an idle one could start.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes every connection around each task unless told to reuse them;
# sei_admin.celery closes the broken and the expired ones instead (SEI_WORKER_CONN_MAX_AGE).
CELERY_DB_REUSE_MAX = 10**9
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
# Progress and results live in database rows; the result backend is not used.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Workers and beat report this often; three missed reports (at least one beat and two outbox
# drains) and the pages, /healthz and the alerts say the process is gone: within a minute.
SEI_HEARTBEAT_SECONDS = env.float("SEI_HEARTBEAT_SECONDS", default=15.0)
# The hour (TIME_ZONE) of the daily secret-expiry reminders and mail health check.
SEI_DAILY_CHECK_HOUR = env.int("SEI_DAILY_CHECK_HOUR", default=7)
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {
        "task": "smtp_settings.tasks.worker_heartbeat",
        "schedule": SEI_HEARTBEAT_SECONDS,
    },
    "secret-expiry-reminders": {
        "task": "smtp_settings.tasks.send_secret_expiry_reminders",
        "schedule": crontab(minute=0, hour=SEI_DAILY_CHECK_HOUR),
    },
    "mail-health-check": {
        "task": "smtp_settings.tasks.mail_health_check",
        "schedule": crontab(minute=5, hour=SEI_DAILY_CHECK_HOUR),
    },
    "expire-abandoned-validation-runs": {
        "task": "smtp_settings.tasks.expire_abandoned_validation_runs",
        "schedule": 20.0,
    },
    # Deferred messages fall due and claims of dead workers run out without a new message.
    "deliver-outbox": {
        "task": "smtp_settings.tasks.deliver_outbox",
        "schedule": env.float("SMTP_OUTBOX_SWEEP_SECONDS", default=30.0),
    },
    "purge-outbox": {"task": "smtp_settings.tasks.purge_outbox", "schedule": 3600.0},
    # Alerts to destinations whose first attempt failed go again.
    "deliver-alerts": {"task": "alerting.tasks.deliver_alerts", "schedule": 30.0},
    # The setup assistant holds a client secret for a session and a short time only.
    "purge-setup-secrets": {"task": "smtp_settings.tasks.purge_setup_secrets", "schedule": 300.0},
    "purge-validation-runs": {
        "task": "smtp_settings.tasks.purge_validation_runs",
        "schedule": 3600.0,
    },
    "clear-expired-sessions": {
        "task": "sei_admin.tasks.clear_expired_sessions",
        "schedule": 3600.0,
    },
}

# ------------------------------------------------------------------------------
# Manage SMTP: Validate and sending
# ------------------------------------------------------------------------------
# Token endpoints may only be Microsoft's login hosts, plus these host[:port] entries
# (a sovereign cloud's proxy, or a local stand-in): the client secret is sent there.
SMTP_OAUTH_AUTHORITY_HOSTS = [
    host.strip().lower() for host in env.list("SMTP_OAUTH_AUTHORITY_HOSTS", default=[]) if host
]
# Microsoft Graph hosts besides Microsoft's own (graph.microsoft.com, graph.microsoft.us,
# microsoftgraph.chinacloudapi.cn), as host[:port], always over https: the access token is
# sent there (the sandbox's stand-in, a sovereign proxy).
SMTP_GRAPH_HOSTS = [
    host.strip().lower() for host in env.list("SMTP_GRAPH_HOSTS", default=[]) if host.strip()
]
# Each network step (token request, connect, TLS, every SMTP answer) gives up after this.
SMTP_NETWORK_TIMEOUT_SECONDS = env.float("SMTP_NETWORK_TIMEOUT_SECONDS", default=10.0)
# Repeated failed sign-ins get an Exchange mailbox blocked, so Validate is rate-limited.
SMTP_VALIDATION_MAX_RUNS = env.int("SMTP_VALIDATION_MAX_RUNS", default=10)
SMTP_VALIDATION_WINDOW_SECONDS = env.int("SMTP_VALIDATION_WINDOW_SECONDS", default=600)
# Validation runs older than this are deleted by beat (the latest 50 always stay).
SMTP_VALIDATION_RETENTION_DAYS = env.int("SMTP_VALIDATION_RETENTION_DAYS", default=90)

# ------------------------------------------------------------------------------
# Sending: every e-mail goes to the outbox (post_office's tables) and a worker delivers
# it through the saved Manage SMTP settings
# ------------------------------------------------------------------------------
EMAIL_BACKEND = env.str("DJANGO_EMAIL_BACKEND", default="smtp_settings.outbox.queue.OutboxBackend")
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="webmaster@localhost")
SERVER_EMAIL = env.str("DJANGO_SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
# Who mail_admins() writes to (server errors among others), comma-separated addresses.
ADMINS = [(address, address) for address in env.list("DJANGO_ADMINS", default=[])]
# Links in e-mail (reminders, alerts) point here.
SEI_CONSOLE_URL = env.str("SEI_CONSOLE_URL", default="http://127.0.0.1:8000")
# Monitoring that sends "Authorization: Bearer <this>" reads why a /healthz check fails;
# without it (and to anyone but a signed-in administrator) each check says only "unavailable".
SEI_HEALTHZ_TOKEN = env.str("SEI_HEALTHZ_TOKEN", default="")
POST_OFFICE = {
    # Delivery is the console's own loop (smtp_settings/outbox); post_office keeps the rows.
    "BACKENDS": {"default": "smtp_settings.sending.SavedSettingsEmailBackend"},
    "CELERY_ENABLED": False,
    "MESSAGE_ID_ENABLED": False,
}
# Exchange Online allows 30 messages a minute and 3 connections per mailbox.
SMTP_MAX_MESSAGES_PER_MINUTE = env.float("SMTP_MAX_MESSAGES_PER_MINUTE", default=30.0)
SMTP_MAX_CONNECTIONS = env.int("SMTP_MAX_CONNECTIONS", default=3)
# Temporary failures wait this long, doubled at each attempt (with jitter), at most an hour.
SMTP_OUTBOX_RETRY_SECONDS = env.float("SMTP_OUTBOX_RETRY_SECONDS", default=60.0)
SMTP_OUTBOX_MAX_ATTEMPTS = env.int("SMTP_OUTBOX_MAX_ATTEMPTS", default=12)
# How long a claim on a message and a lease on a connection last without renewal. A drain
# renews both every quarter of this while its process lives, so only a dead worker's claims
# and leases lapse: its message is retried and its connection slot freed after this.
SMTP_OUTBOX_CLAIM_SECONDS = env.float("SMTP_OUTBOX_CLAIM_SECONDS", default=10.0)
# A drain claims this many due messages at once (one transaction, not one per message); a
# killed worker's batch is retried when its claims lapse, like a single message. A claim
# costs about 5 ms of a worker's time: at 20 it was a tenth of a message's time at full speed.
SMTP_OUTBOX_CLAIM_BATCH = env.int("SMTP_OUTBOX_CLAIM_BATCH", default=50)
# One delivery task works at most this long, then hands over to a new task (it hands over
# sooner, between two messages, when a Validate run or health check waits for a worker).
# How the worker shares its time, not a deployment's choice: a constant (tests override it).
SMTP_OUTBOX_DRAIN_SECONDS = 20.0
SMTP_OUTBOX_RETENTION_DAYS = env.int("SMTP_OUTBOX_RETENTION_DAYS", default=30)

# ------------------------------------------------------------------------------
# Logging: to the console; secrets and tokens are never passed to a logger
# ------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # One line per record, whatever a record quotes (a server's answer may hold CR/LF).
    "formatters": {
        "plain": {
            "()": "sei_admin.logformat.OneLineFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
        }
    },
    "filters": {"expected_responses": {"()": "sei_admin.quiet_log.ExpectedResponses"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    # A failing check is the answer of /healthz, not a traceback in the log at every probe.
    # An idle console logs what changes, not its routine: beat's "Sending due task", the
    # worker's "received" and "succeeded" lines (about 20 a minute) only from
    # CELERY_ROUTINE_LOG_LEVEL=INFO; failures stay ERROR.
    "loggers": {
        "health_check": {"level": "ERROR"},
        "axes": {"level": "WARNING"},
        # Apprise names a destination's URL (its token) in its own lines: the alerting app
        # logs what a send said, scrubbed, and Apprise's lines go nowhere else.
        "apprise": {"level": "WARNING", "propagate": False},
        # Its DEBUG lines name every request's path: a webhook's path is its token.
        "urllib3": {"level": "INFO"},
        "django.request": {"filters": ["expected_responses"]},
        **{
            name: {"level": env.str("CELERY_ROUTINE_LOG_LEVEL", default="WARNING")}
            for name in ("celery.beat", "celery.worker.strategy", "celery.app.trace")
        },
    },
}
