"""Settings shared by every role and environment.

Environment-specific modules (dev, test, production) import this and change
only what differs. Values come from `fintech.settings.env` alone.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ImproperlyConfigured

from fintech.settings.env import (
    BASE_DIR,
    VAR_DIR,
    currency_amounts_minor,
    env,
    fintech_process,
    process_holds,
    retired_variable_refuse,
)
from fintech.settings.rate_limits import DEFAULT_GROUPS as DEFAULT_RATE_LIMIT_GROUPS
from fintech.settings.rate_limits import DEFAULT_POLICIES as DEFAULT_RATE_LIMIT_POLICIES

DEBUG = False
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "accounts.admin_site.FintechAdminConfig",  # django.contrib.admin, with MFA required for staff
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "auditlog",
    "oauth2_provider",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "accounts",
    "ledger",
    "tokenvault",
    "audit",
    "pki",
    "fintech.apps.PlatformConfig",  # last: its post_migrate runs after every other app's
]

MIDDLEWARE = [
    # First: a TLS client certificate header is dropped unless the terminator's socket brought it (RFC 8705).
    "fintech.middleware.client_certificate.ClientCertificateMiddleware",
    "fintech.middleware.request_context.RequestContextMiddleware",
    "fintech.middleware.observability.RequestObservabilityMiddleware",
    # Early, so calls refused by later middleware (413, bad host) are on record too.
    "audit.middleware.AuditContextMiddleware",
    "audit.middleware.ApiCallAuditMiddleware",
    "fintech.middleware.body_size.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "fintech.middleware.content_security.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: its process_view runs once the route, the session user and CSRF are settled (ADR 0017).
    "fintech.middleware.rate_limit.RateLimitMiddleware",
]

ROOT_URLCONF = "fintech.urls"
WSGI_APPLICATION = "fintech.wsgi.application"

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
                "csp.context_processors.nonce",
            ],
        },
    },
]

# --- Databases -------------------------------------------------------------
# `default` holds everything but the token vault; `vault` is the vault's own
# database (its own role, in production its own network segment). The router
# keeps each app on its side.
#
# Two roles per database: web and worker processes connect as the runtime role
# (DATABASE_URL); migrations run as the owner (DATABASE_OWNER_URL), selected by
# FINTECH_DATABASE_ROLE=owner. The runtime role owns no table, so it can neither
# disable a trigger nor write to write-once tables beyond INSERT.
DATABASE_ROLE = env.str("FINTECH_DATABASE_ROLE", default="runtime")
_LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432/"


def database_urls(alias: str) -> tuple[str, str]:
    """(runtime URL, owner URL or "") of one database, read from the environment only when asked for.

    A process that does not hold the vault never asks for `vault`, so it never
    reads VAULT_DATABASE_URL (the API role in production, ADR 0012).
    """
    if alias == "default":
        return env.str("DATABASE_URL", default="") or f"{_LOCAL_POSTGRES}fintech", env.str(
            "DATABASE_OWNER_URL", default=""
        )
    if alias == "vault":
        return env.str("VAULT_DATABASE_URL", default="") or f"{_LOCAL_POSTGRES}fintech_vault", env.str(
            "VAULT_DATABASE_OWNER_URL", default=""
        )
    raise ValueError(f"unknown database alias {alias!r}")


def database_runtime_roles(aliases: tuple[str, ...]) -> dict[str, str]:
    return {alias: env.db_url_config(database_urls(alias)[0])["USER"] for alias in aliases}


def databases_for(role: str, *, aliases: tuple[str, ...], **options) -> dict:
    """Django DATABASES for the runtime role or the owner role (owner falls back to runtime)."""
    if role not in ("runtime", "owner"):
        raise ValueError(f"FINTECH_DATABASE_ROLE must be 'runtime' or 'owner', not {role!r}")
    databases = {}
    for alias in aliases:
        runtime_url, owner_url = database_urls(alias)
        databases[alias] = database_config(owner_url or runtime_url if role == "owner" else runtime_url, **options)
    return databases


def database_config(url: str, **options) -> dict:
    """One Django DATABASES entry for `url`, with the project's connection settings."""
    config = env.db_url_config(url)
    config.setdefault("OPTIONS", {}).update(
        {"connect_timeout": env.int("DATABASE_CONNECT_TIMEOUT_SECONDS", default=5), **options}
    )
    config["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE_SECONDS", default=60)
    config["CONN_HEALTH_CHECKS"] = True
    # One decision for the whole project: services open their own
    # `transaction.atomic(durable=True)`; requests are not wrapped.
    config["ATOMIC_REQUESTS"] = False
    return config


# The main-database role the vault role connects as (VAULT_AUDIT_DATABASE_URL, ADR 0012): after
# every migrate it holds INSERT on the audit event table and nothing else (fintech/db_privileges.py).
# A name, not a credential: the API role's migrate grants to it without ever reading its URL.
VAULT_AUDIT_DATABASE_ROLE = "fintech_vault_audit"
# The role that owns the ledger's SECURITY DEFINER functions and alone writes the money tables (NOLOGIN;
# the migrating role must be a member of it). A name, not a credential (ADR 0016).
LEDGER_DEFINER_ROLE = "fintech_ledger"

# The audit sealer (issue 12, ADR 0005): the one process that signs checkpoints and records verification results,
# the Celery worker (Procfile `worker:` sets AUDIT_SEALER_PROCESS=1). Only it points at the signing key, and it
# writes checkpoints, seals, signing keys and verification results through a login of its own, which alone may
# INSERT them (fintech/db_privileges.py); the runtime role the web connects as keeps SELECT.
AUDIT_SEALER_PROCESS = env.bool("AUDIT_SEALER_PROCESS", default=False)
if AUDIT_SEALER_PROCESS and not process_holds("audit_signing_key"):  # fintech/process_keys.py
    raise ImproperlyConfigured(f"AUDIT_SEALER_PROCESS=1 in the {fintech_process()} process: only the worker seals.")
# A name, not a credential: the owner's migrate grants to it without ever reading its URL.
AUDIT_SEALER_DATABASE_ROLE = "fintech_sealer"
AUDIT_SEALER_ALIAS = "audit_sealer"
AUDIT_SEALER_DATABASE = "default"  # the alias sealing writes through; each environment module sets it


def audit_sealer_databases(databases: dict, *, sealer: bool, **options) -> tuple[dict, str]:
    """(`databases` plus the sealer's own connection, the alias sealing writes through).

    The one place AUDIT_SEALER_DATABASE_URL is read, and only for the sealer
    process: a web process never holds the sealer's credential. Without a URL
    (a single-role deployment) sealing writes through `default`, as before the
    role existed; production refuses that (fintech/settings/production.py).
    """
    url = env.str("AUDIT_SEALER_DATABASE_URL", default="") if sealer else ""
    if not url:
        return databases, "default"
    return {**databases, AUDIT_SEALER_ALIAS: database_config(url, **options)}, AUDIT_SEALER_ALIAS


# Which process this is (ADR 0012): "api" serves /v1, OAuth and the admin; "vault" serves
# only the vault's internal API (fintech/settings/vault.py).
SERVICE_ROLE = "api"
# Which process of its role (FINTECH_PROCESS: web, worker, beat, vault, ops): the settings load only the keys
# fintech/process_keys.py gives it, and the deploy check refuses any other. "" in a dev console and the test
# runner, which hold every key; production settings refuse it.
FINTECH_PROCESS = fintech_process()
# The databases this process holds. The API role in production: `default` only. Dev and test
# add `vault` (migrations, in-process unit tests); the vault role holds both.
DATABASE_ALIASES: tuple[str, ...] = ("default",)
DATABASES = databases_for(DATABASE_ROLE, aliases=DATABASE_ALIASES)
DATABASE_RUNTIME_ROLES = database_runtime_roles(DATABASE_ALIASES)
DATABASE_ROUTERS = ["fintech.db_router.DomainDatabaseRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache, Celery ---------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="") or "redis://127.0.0.1:6379/0"
REDIS_TIMEOUT_SECONDS = env.float("REDIS_TIMEOUT_SECONDS", default=1.0)
# Every key this project writes to Redis starts with this, so environments can share a server.
REDIS_KEY_PREFIX = env.str("CACHE_KEY_PREFIX", default="fintech")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_KEY_PREFIX,
        "OPTIONS": {
            "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
            "socket_timeout": REDIS_TIMEOUT_SECONDS,
        },
    }
}

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or REDIS_URL
# A result store for the few tasks a command waits for (the `cert` queue, ADR 0018); every other task keeps
# storing nothing (CELERY_TASK_IGNORE_RESULT), and results expire after five minutes.
CELERY_RESULT_BACKEND = CELERY_BROKER_URL
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_EXPIRES = 300
if CELERY_RESULT_BACKEND.startswith("rediss://"):  # Celery's result store insists on being told to verify TLS
    CELERY_REDIS_BACKEND_USE_SSL = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT_SECONDS", default=120)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT_SECONDS", default=100)
CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_TIMEOUT_SECONDS
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_IMPORTS = ("fintech.tasks",)
# The platform CA (issue 14, ADR 0018): tasks that sign go to a queue of their own, consumed by the one process
# holding the issuing key (the cert worker: fintech/process_keys.py). Test settings give the queue a per-run name.
PKI_CERT_QUEUE = "cert"
PKI_CERT_TASKS = ("pki.certificate_issue", "pki.certificate_renew", "pki.certificate_revoke", "pki.crl_publish",
                  "pki.certificates_renew_due")  # fmt: skip
CELERY_TASK_ROUTES = {name: {"queue": PKI_CERT_QUEUE} for name in PKI_CERT_TASKS}
CELERY_BEAT_SCHEDULE: dict = {
    "heartbeat": {"task": "fintech.heartbeat", "schedule": 30.0, "options": {"expires": 25}},
    "audit-seal": {"task": "audit.seal_pending_events", "schedule": 10.0, "options": {"expires": 9}},
    "audit-verify": {"task": "audit.verify_trail", "schedule": 3600.0, "options": {"expires": 3000}},
    "ledger-dispatch-outbox": {"task": "ledger.dispatch_outbox", "schedule": 30.0, "options": {"expires": 25}},
    "ledger-expire-holds": {"task": "ledger.expire_holds", "schedule": 60.0, "options": {"expires": 55}},
    "ledger-prune-velocity": {
        "task": "ledger.prune_velocity_buckets",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
    "ledger-escalate-reviews": {
        "task": "ledger.escalate_review_cases",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    "idempotency-purge": {
        "task": "fintech.purge_idempotency_records",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
    "vault-reap-orphans": {"task": "tokenvault.reap_orphans", "schedule": 86400.0, "options": {"expires": 3600}},
    "accounts-expire-approval-requests": {
        "task": "accounts.expire_approval_requests",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    # Issue 11 item 4: an access change the database recorded without an approved request becomes an alert.
    # Issue 14: renew what the platform issued and is due, publish the CRL, alert on what it cannot renew.
    "pki-renew-due": {"task": "pki.certificates_renew_due", "schedule": 86400.0, "options": {"expires": 3600}},
    "pki-publish-crl": {"task": "pki.crl_publish", "schedule": 86400.0, "options": {"expires": 3600}},
    "pki-watch-expiry": {"task": "pki.certificates_watch_expiry", "schedule": 3600.0, "options": {"expires": 3000}},
    "accounts-alert-unapproved-access-changes": {
        "task": "accounts.alert_unapproved_access_changes",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
}

# --- Auth --------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
# Django's ModelBackend, refusing a password hash that fails its MAC (accounts.password_macs, issue 12).
AUTHENTICATION_BACKENDS = ["accounts.backends.PasswordMacBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Internationalisation, static ---------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- HTTP hardening -------------------------------------------------------------
# Requests larger than this are refused with 413 before the body is read.
REQUEST_BODY_MAX_BYTES = env.int("REQUEST_BODY_MAX_BYTES", default=1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_BODY_MAX_BYTES
DATA_UPLOAD_MAX_NUMBER_FIELDS = 200
# Addresses of reverse proxies whose X-Forwarded-For / X-Request-ID we believe.
# Empty means: the peer address is the client, and no header is trusted.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# The database stores a keyed hash of each session key, never the cookie itself (issue 12).
SESSION_ENGINE = "fintech.sessions"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE_SECONDS", default=30 * 60)
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"

# Pages (admin, login, API docs) may load only our own assets; no inline script.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# JSON and CSV responses render nothing: they get the tightest policy.
CONTENT_SECURITY_POLICY_API = {"default-src": ["'none'"], "frame-ancestors": ["'none'"]}

# --- REST API -------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.HasRequiredScopes"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["fintech.json_documents.BoundedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "fintech.problems.problem_exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Fintech back-office API",
    "DESCRIPTION": "Customer and partner API. Errors are RFC 9457 problem details with a stable `code`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "fintech.openapi.rate_limit_responses",  # the limiter's 429/503 and RateLimit fields (ADR 0017)
    ],
}
# Swagger UI's "Authorize" button (issue 15): in dev, `demo_seed` registers this public PKCE client for the
# docs page's redirect; `swagger_ui_oauth(issuer)` points Swagger UI at it. Production registers no docs client.
DOCS_OAUTH_CLIENT_ID = "fintech-api-docs"
DOCS_OAUTH_REDIRECT_PATH = "/v1/docs/oauth2-redirect.html"


def swagger_ui_oauth(spectacular: dict, issuer: str) -> dict:
    """SPECTACULAR_SETTINGS with Swagger UI using the docs client: authorization code with PKCE, no secret.

    The redirect URL is absolute and on the issuer's origin, exactly what the
    client is registered with (redirect URIs match exactly): open the docs at
    that origin, or the popup cannot hand the code back to the page.
    """
    return {
        **spectacular,
        "SWAGGER_UI_SETTINGS": {"deepLinking": True, "oauth2RedirectUrl": f"{issuer}{DOCS_OAUTH_REDIRECT_PATH}"},
        "SWAGGER_UI_OAUTH2_CONFIG": {
            "clientId": DOCS_OAUTH_CLIENT_ID,
            "usePkceWithAuthorizationCodeGrant": True,
            "scopes": "openid profile:read",
        },
    }


PROBLEM_TYPE_BASE_URL = env.str("PROBLEM_TYPE_BASE_URL", default="https://errors.fintech.example/")

# --- Observability ----------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_context": {"()": "fintech.structured_logging.RequestContextFilter"},
        "scrub": {"()": "fintech.structured_logging.ScrubbingFilter"},
    },
    "formatters": {"json": {"()": "fintech.structured_logging.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_context", "scrub"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"level": "WARNING"},
        "celery": {"level": LOG_LEVEL},
    },
}
# Multiprocess metrics for gunicorn workers; empty means single-process registry.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
# If set, GET /metrics requires `Authorization: Bearer <METRICS_TOKEN>`.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="") if process_holds("metrics_token") else ""
HEALTH_CHECK_TIMEOUT_SECONDS = env.float("HEALTH_CHECK_TIMEOUT_SECONDS", default=2.0)

ADMIN_URL = env.str("DJANGO_ADMIN_URL", default="admin/")
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default="") or str(VAR_DIR / "mail")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT_SECONDS", default=10)  # the outbox holds a row lock while sending
WEBHOOK_ALLOW_LOOPBACK_HTTP = False
OUTBOX_DELIVERY_ON_COMMIT = True
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="no-reply@fintech.example")
DEMO_DATA_ALLOWED = env.bool("DEMO_DATA_ALLOWED", default=True)

# --- Ledger: money controls (ADR 0014) --------------------------------------------------
# Daily limits count per business day in this IANA time zone (a DST day is 23 or 25 hours long).
# Accounts a customer may hold that are not closed (issue 13): what one principal can accumulate is bounded.
LEDGER_MAX_ACCOUNTS_PER_CUSTOMER = env.int("LEDGER_MAX_ACCOUNTS_PER_CUSTOMER", default=20)
LEDGER_LIMIT_TIME_ZONE = env.str("LEDGER_LIMIT_TIME_ZONE", default="UTC")
try:
    ZoneInfo(LEDGER_LIMIT_TIME_ZONE)
except (ZoneInfoNotFoundError, ValueError) as error:
    raise ImproperlyConfigured(f"LEDGER_LIMIT_TIME_ZONE={LEDGER_LIMIT_TIME_ZONE!r} is not an IANA time zone") from error
# An open review case nobody decided within this many hours is escalated (never approved by itself).
LEDGER_REVIEW_ESCALATE_AFTER_HOURS = env.int("LEDGER_REVIEW_ESCALATE_AFTER_HOURS", default=24)
if not 1 <= LEDGER_REVIEW_ESCALATE_AFTER_HOURS <= 24 * 30:
    raise ImproperlyConfigured("LEDGER_REVIEW_ESCALATE_AFTER_HOURS is a whole number of hours from 1 to 720")

# --- Audit trail --------------------------------------------------------------------
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=7 * 365 + 2)  # 7 years incl. leap days


def audit_signing_key_file() -> str:
    """Where the checkpoint signing key is: AUDIT_SIGNING_KEY_PATH, else generated under var/keys/ (dev/test)."""
    return env.str("AUDIT_SIGNING_KEY_PATH", default="") or str(VAR_DIR / "keys" / "audit-signing-ed25519.pem")


# Only the sealer process points at the private key (issue 12); in any other process it is "" and
# audit.signing refuses to load a key.
AUDIT_SIGNING_KEY_PATH = audit_signing_key_file() if AUDIT_SEALER_PROCESS else ""
AUDIT_SIGNING_KEY_GENERATE = process_holds("audit_signing_key")  # dev/test only; production sets False
# The public keys audit verification trusts (files: the verifier never trusts keys from the database, which the
# runtime role could write). Dev/test: the public half of the generated signing key, written next to it.
AUDIT_VERIFY_KEY_PATHS = (
    (env.list("AUDIT_VERIFY_KEY_PATHS", default=[]) or [str(Path(audit_signing_key_file()).with_suffix(".pub.pem"))])
    if process_holds("audit_verify_keys")
    else []
)
# Each seal also appends its signed checkpoints to a file here, outside the database, and audit_verify compares
# the newest one with the database: a database restored to an older state fails (issue 12). Production: required
# in the sealer process, on storage the database's administrators cannot rewrite. Empty: no export, no comparison.
AUDIT_CHECKPOINT_EXPORT_DIR = env.str("AUDIT_CHECKPOINT_EXPORT_DIR", default="") or str(VAR_DIR / "audit-checkpoints")
# Staff grants (ADR 0015): operators sign (process `ops`, after authenticating the operator and, for a
# retirement, a second person) what a vault-role key command may do; the vault holds only the public key.
STAFF_GRANT_SIGNING_KEY_PATH = (
    (env.str("STAFF_GRANT_SIGNING_KEY_PATH", default="") or str(VAR_DIR / "keys" / "staff-grant-ed25519.pem"))
    if process_holds("staff_grant_signing_key")
    else ""
)
STAFF_GRANT_VERIFY_KEY_PATH = (
    (env.str("STAFF_GRANT_VERIFY_KEY_PATH", default="") or str(VAR_DIR / "keys" / "staff-grant-ed25519.pub.pem"))
    if process_holds("staff_grant_verify_key")
    else ""
)
STAFF_GRANT_KEY_GENERATE = process_holds("staff_grant_signing_key")  # dev/test only; production sets False
# The platform CA (issue 14, ADR 0018). The root's key is never on a host in production: only its certificate.
# The issuing intermediate's key is held by the cert worker alone (fintech/process_keys.py), which consumes the
# `cert` queue; every other process has "" here and pki.ca refuses to load a key. Dev/test: the root and the
# intermediate are generated on first use into var/keys/pki/ (0600 keys), by the cert worker.
PKI_DIR = VAR_DIR / "keys" / "pki"
PKI_ROOT_CERT_PATH = env.str("PKI_ROOT_CERT_PATH", default="") or str(PKI_DIR / "root-ca.pem")
# The root's CRL, published by its offline ceremony (production); empty in dev/test, where it is signed on demand.
PKI_ROOT_CRL_PATH = env.str("PKI_ROOT_CRL_PATH", default="")
PKI_ISSUING_CERT_PATH = env.str("PKI_ISSUING_CERT_PATH", default="") or str(PKI_DIR / "issuing-ca.pem")
PKI_ISSUING_KEY_PATH = (
    (env.str("PKI_ISSUING_KEY_PATH", default="") or str(PKI_DIR / "issuing-ca.key.pem"))
    if process_holds("pki_issuing_key")
    else ""
)
PKI_KEY_GENERATE = process_holds("pki_issuing_key")  # dev/test only; production sets False
# The DNS subtrees the intermediate may certify (its NameConstraints); read when the intermediate is generated.
PKI_PERMITTED_DNS_DOMAINS = env.list("PKI_PERMITTED_DNS_DOMAINS", default=["internal.example", "localhost"])
# Where the worker publishes the CRL (PEM), regenerated daily with a 7-day nextUpdate.
PKI_CRL_PATH = env.str("PKI_CRL_PATH", default="") or str(VAR_DIR / "pki" / "crl.pem")
# Certificates the platform issued are renewed this many days before they expire.
PKI_RENEW_WITHIN_DAYS = env.int("PKI_RENEW_WITHIN_DAYS", default=30)
# Certificates issued elsewhere that the platform serves and must not let expire (the public server certificate):
# PEM files read by the hourly watch, recorded when new, alerted at 30/14/7/1 days.
PKI_EXTERNAL_CERTIFICATE_PATHS = env.list("PKI_EXTERNAL_CERTIFICATE_PATHS", default=[])
# The longest validity cert_issue grants (the CA/Browser Forum's 397 days, a sane ceiling for internal ones too).
PKI_MAX_DAYS = env.int("PKI_MAX_DAYS", default=397)
# How long a command waits for the `cert` worker before giving up.
PKI_TASK_TIMEOUT_SECONDS = env.int("PKI_TASK_TIMEOUT_SECONDS", default=60)
# --- The vault's TLS terminator (issue 14): `tls_terminator` (pki/terminator_process.py), and the certificates
# `tls_dev_certificates` issues for it in dev (pki/dev_certificates.py). ---
# Dev/test: the terminator's server certificate, the API role's vault client certificate and the CA bundle.
PKI_TLS_DIR = env.str("PKI_TLS_DIR", default="") or str(VAR_DIR / "tls")
# The terminator's server certificate (leaf then chain) and its key: the key `terminator_server_key` of
# fintech/process_keys.py, the terminator process's alone ("" in every other). Dev/test: the files
# tls_dev_certificates writes (pki/dev_certificates.py's VAULT_SERVER, "vault-server"); production: credentials.
_HOLDS_TERMINATOR_SERVER_KEY = process_holds("terminator_server_key")
PKI_TERMINATOR_CERT_PATH = (
    (env.str("PKI_TERMINATOR_CERT_PATH", default="") or str(Path(PKI_TLS_DIR) / "vault-server.pem"))
    if _HOLDS_TERMINATOR_SERVER_KEY
    else ""
)
PKI_TERMINATOR_KEY_PATH = (
    (env.str("PKI_TERMINATOR_KEY_PATH", default="") or str(Path(PKI_TLS_DIR) / "vault-server.key"))
    if _HOLDS_TERMINATOR_SERVER_KEY
    else ""
)
# Where nginx listens for the vault role (mutual TLS, HOST:PORT), and the vault behind it: dev, its plain-HTTP
# loopback port; production, its Unix socket (http://unix:/run/fintech-vault/vault.sock:).
VAULT_TLS_PORT = env.int("VAULT_TLS_PORT", default=8443)
PKI_TERMINATOR_VAULT_LISTEN = env.str("PKI_TERMINATOR_VAULT_LISTEN", default="") or f"127.0.0.1:{VAULT_TLS_PORT}"
PKI_TERMINATOR_VAULT_UPSTREAM = (
    env.str("PKI_TERMINATOR_VAULT_UPSTREAM", default="") or f"http://127.0.0.1:{env.int('VAULT_PORT', default=8001)}"
)
# How often the terminator looks for a new CRL or a renewed server certificate: a revocation takes effect within
# this plus the reload (issue 14 asks for 60 s).
PKI_TERMINATOR_POLL_SECONDS = env.int("PKI_TERMINATOR_POLL_SECONDS", default=10)
# The services (the `cert_issue SERVICE` name, the certificate's OU) whose platform certificates the vault's listener
# lets through: every other leaf of the platform CA (a server's, another service's) gets 403 from nginx.
PKI_TERMINATOR_VAULT_CLIENT_SERVICES = env.list("PKI_TERMINATOR_VAULT_CLIENT_SERVICES", default=["api-vault-client"])
if not 1 <= PKI_TERMINATOR_POLL_SECONDS <= 50:
    raise ImproperlyConfigured("PKI_TERMINATOR_POLL_SECONDS must be 1-50: a revocation must bite within 60 s")
# The partners' mTLS listener (RFC 8705, "pinned" client certificates) in front of the web role's Unix socket.
API_MTLS_PORT = env.int("API_MTLS_PORT", default=8444)
PKI_TERMINATOR_PARTNER_LISTEN = env.str("PKI_TERMINATOR_PARTNER_LISTEN", default="") or f"127.0.0.1:{API_MTLS_PORT}"
# The web role's socket behind it: PKI_TERMINATOR_WEB_SOCKET (production: /run/fintech-web/web.sock), else the web's
# own WEB_UNIX_SOCKET (dev: the Procfile's var/run/web.sock).
PKI_TERMINATOR_WEB_SOCKET = str(
    Path(
        env.str("PKI_TERMINATOR_WEB_SOCKET", default="")
        or env.str("WEB_UNIX_SOCKET", default="")
        or VAR_DIR / "run" / "web.sock"
    ).resolve()
)
# --- end of the terminator's block ---
AUDIT_SEAL_BATCH_SIZE = env.int("AUDIT_SEAL_BATCH_SIZE", default=1000)
AUDIT_SEAL_MAX_BATCHES_PER_RUN = env.int("AUDIT_SEAL_MAX_BATCHES_PER_RUN", default=50)
AUDIT_ARCHIVE_DIR = env.str("AUDIT_ARCHIVE_DIR", default="") or str(VAR_DIR / "audit-archives")
AUDITLOG_MASK_CALLABLE = "audit.masking.mask_entirely"
AUDITLOG_INCLUDE_ALL_MODELS = False

# --- OAuth 2.1 authorization server (django-oauth-toolkit) ----------------------------
# DOT's defaults are unsafe for a payments platform; every value here is deliberate.
OAUTH_ACCESS_TOKEN_SECONDS = env.int("OAUTH_ACCESS_TOKEN_SECONDS", default=600)
if not 300 <= OAUTH_ACCESS_TOKEN_SECONDS <= 900:
    raise ValueError("OAUTH_ACCESS_TOKEN_SECONDS must be between 300 and 900 (5-15 minutes).")
# Idle lifetime of a refresh token, and the hard limit from the original login.
OAUTH_REFRESH_TOKEN_IDLE_SECONDS = env.int("OAUTH_REFRESH_TOKEN_IDLE_SECONDS", default=7 * 24 * 3600)
OAUTH_REFRESH_TOKEN_ABSOLUTE_SECONDS = env.int("OAUTH_REFRESH_TOKEN_ABSOLUTE_SECONDS", default=30 * 24 * 3600)
OAUTH_SCOPES = {
    "openid": "Sign you in",
    "profile:read": "See your profile",
    "profile:write": "Record your identity (name, date of birth, phone, address, national ID)",
    "accounts:read": "See your accounts and balances",
    "accounts:write": "Open accounts",
    "transfers:read": "See your transfers",
    "transfers:write": "Move money from your accounts",
    "cards:read": "See your saved cards",
    "cards:write": "Save and remove cards",
    # Client credentials only, and only for clients whose policy lists token types (ADR 0012).
    "vault:detokenize": "Read vaulted card numbers or national ids in clear",
}
# The terminator's mTLS listener in front of the web role (RFC 8705 `mtls_endpoint_aliases`), e.g.
# https://mtls.api.example; "" advertises no aliases. Partners with a pinned certificate use it.
OAUTH_MTLS_BASE_URL = env.str("OAUTH_MTLS_BASE_URL", default="")
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
# Named because accounts.AccessTokenMac points at it (issue 12); DOT's own model, not swapped.
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"  # noqa: S105  # nosec B105 - a model name
OAUTH2_PROVIDER = {
    "SCOPES": OAUTH_SCOPES,
    "DEFAULT_SCOPES": ["profile:read"],
    "OAUTH2_VALIDATOR_CLASS": "accounts.oauth.validators.FintechOAuth2Validator",
    "OAUTH2_SERVER_CLASS": "accounts.oauth.server.OAuth21Server",
    "OIDC_SERVER_CLASS": "accounts.oauth.server.OAuth21Server",
    "ACCESS_TOKEN_EXPIRE_SECONDS": OAUTH_ACCESS_TOKEN_SECONDS,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ID_TOKEN_EXPIRE_SECONDS": OAUTH_ACCESS_TOKEN_SECONDS,
    "REFRESH_TOKEN_EXPIRE_SECONDS": OAUTH_REFRESH_TOKEN_IDLE_SECONDS,
    "ROTATE_REFRESH_TOKEN": True,  # nosec B105 - a setting name, not a secret
    "REFRESH_TOKEN_REUSE_PROTECTION": True,  # nosec B105 - a setting name, not a secret
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,  # nosec B105 - a setting name, not a secret
    "PKCE_REQUIRED": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https", "http"],  # http only for loopback: accounts/oauth/clients.py
    "ALLOW_URI_WILDCARDS": False,
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,  # nosec B105 - a setting name, not a secret
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,  # nosec B105 - a setting name, not a secret
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,  # nosec B105 - a setting name, not a secret
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,  # nosec B105 - a setting name, not a secret
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OAUTH2_GRANT_TYPES_SUPPORTED": ["authorization_code", "client_credentials", "refresh_token"],
    # self_signed_tls_client_auth: partners with a pinned certificate, over the mTLS listener (RFC 8705, ADR 0018).
    "OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": ["client_secret_basic", "self_signed_tls_client_auth", "none"],
    "OIDC_ENABLED": True,
    "OIDC_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OIDC_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": ["client_secret_basic", "self_signed_tls_client_auth", "none"],
    "OIDC_ISS_ENDPOINT": env.str("OAUTH_ISSUER_URL", default=""),
    "OIDC_RSA_PRIVATE_KEY": "",  # set by the environment module below
    "OIDC_RSA_PRIVATE_KEYS_INACTIVE": [],
    "ERROR_RESPONSE_WITH_SCOPES": True,
    "REQUEST_APPROVAL_PROMPT": "auto",
    "DCR_ENABLED": False,
    "CIMD_ENABLED": False,
}
# ID-token signing keys (RSA, PEM files). The current key signs; inactive ones stay
# in the JWKS until tokens signed with them have expired (rotation without downtime).
# The web process's only (token endpoint, JWKS): "" and [] in every other process.
OIDC_SIGNING_KEY_PATH = (
    (env.str("OIDC_SIGNING_KEY_PATH", default="") or str(VAR_DIR / "keys" / "oidc-rsa.pem"))
    if process_holds("oidc_signing_key")
    else ""
)
OIDC_INACTIVE_KEY_PATHS = env.list("OIDC_INACTIVE_KEY_PATHS", default=[]) if process_holds("oidc_signing_key") else []
OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEYS_INACTIVE"] = [Path(p).read_text() for p in OIDC_INACTIVE_KEY_PATHS]
# Step-up (RFC 9470): amounts above their currency's threshold need recent MFA. Written in major
# units (exact decimals), converted once here; a currency not listed needs step-up for every amount.
STEP_UP_THRESHOLDS_MINOR = currency_amounts_minor(
    env.str("STEP_UP_THRESHOLDS", default="EUR=1000.00,USD=1000.00,GBP=1000.00,CHF=1000.00,JPY=150000,KWD=300.000"),
    variable="STEP_UP_THRESHOLDS",
)
retired_variable_refuse("STEP_UP_AMOUNT_MINOR", replaced_by="STEP_UP_THRESHOLDS")  # one number for every currency
STEP_UP_MAX_AGE_SECONDS = env.int("STEP_UP_MAX_AGE_SECONDS", default=300)
# Four eyes (issue 11, ADR 0015): requests nobody decided expire; money a single operator may move alone.
FOUR_EYES_REQUEST_TTL_HOURS = env.int("FOUR_EYES_REQUEST_TTL_HOURS", default=24)
if not 1 <= FOUR_EYES_REQUEST_TTL_HOURS <= 24 * 7:
    raise ImproperlyConfigured("FOUR_EYES_REQUEST_TTL_HOURS is a whole number of hours from 1 to 168")
# A manual deposit above its currency's amount needs a second operator; a currency not listed: every deposit.
FOUR_EYES_DEPOSIT_THRESHOLDS_MINOR = currency_amounts_minor(
    env.str("FOUR_EYES_DEPOSIT_THRESHOLDS", default="EUR=1000.00,USD=1000.00,GBP=1000.00,CHF=1000.00,JPY=150000"),
    variable="FOUR_EYES_DEPOSIT_THRESHOLDS",
)
# What one operator may deposit alone per currency and day (UTC), all deposits together: no splitting.
FOUR_EYES_DEPOSIT_DAILY_TOTALS_MINOR = currency_amounts_minor(
    env.str("FOUR_EYES_DEPOSIT_DAILY_TOTALS", default="EUR=5000.00,USD=5000.00,GBP=5000.00,CHF=5000.00,JPY=750000"),
    variable="FOUR_EYES_DEPOSIT_DAILY_TOTALS",
)
# A review case whose transfer is above its currency's amount is approved by a second officer.
FOUR_EYES_REVIEW_APPROVAL_THRESHOLDS_MINOR = currency_amounts_minor(
    env.str("FOUR_EYES_REVIEW_APPROVAL_THRESHOLDS", default="EUR=10000.00,USD=10000.00,GBP=10000.00,CHF=10000.00"),
    variable="FOUR_EYES_REVIEW_APPROVAL_THRESHOLDS",
)
# Login throttling (seed 002: 5 per 15 minutes), per account and per address.
LOGIN_ATTEMPTS_PER_ACCOUNT = env.str("LOGIN_ATTEMPTS_PER_ACCOUNT", default="5/15m")
LOGIN_ATTEMPTS_PER_ADDRESS = env.str("LOGIN_ATTEMPTS_PER_ADDRESS", default="50/15m")
# Customers' password reset (accounts/password_reset.py). A link works once and for this long: an
# hour is enough to open an email, short enough that an old mailbox backup is worth nothing.
PASSWORD_RESET_TIMEOUT = 60 * 60
# Reset requests, counted whether or not the email belongs to anyone (the limit must not tell).
PASSWORD_RESET_REQUESTS_PER_EMAIL = env.str("PASSWORD_RESET_REQUESTS_PER_EMAIL", default="3/1h")
PASSWORD_RESET_REQUESTS_PER_ADDRESS = env.str("PASSWORD_RESET_REQUESTS_PER_ADDRESS", default="20/1h")
# --- API rate limits (issue 13, ADR 0017; fintech/api_limits.py) ---------------------------
# The policy table is data (fintech/settings/rate_limits.py); RATE_LIMIT_POLICIES_JSON overrides fields
# of named policies, e.g. {"money_write.user": {"rate": "50/1m", "burst": 10}}.
_RATE_LIMIT_OVERRIDES = env.json("RATE_LIMIT_POLICIES_JSON", default={})
_RATE_LIMIT_UNKNOWN = sorted(set(_RATE_LIMIT_OVERRIDES) - set(DEFAULT_RATE_LIMIT_POLICIES))
if _RATE_LIMIT_UNKNOWN:
    raise ImproperlyConfigured(f"RATE_LIMIT_POLICIES_JSON names unknown policies: {_RATE_LIMIT_UNKNOWN}")
RATE_LIMIT_POLICIES = {
    name: {**spec, **_RATE_LIMIT_OVERRIDES.get(name, {})} for name, spec in DEFAULT_RATE_LIMIT_POLICIES.items()
}
RATE_LIMIT_GROUPS = DEFAULT_RATE_LIMIT_GROUPS
# Partner tiers: {"<client id>": "premium"}; a client not listed is on each policy's default numbers.
RATE_LIMIT_CLIENT_TIERS = env.json("RATE_LIMIT_CLIENT_TIERS_JSON", default={})
# rate_limit.exceeded audit events per policy per minute; beyond it principals are counted, not recorded.
RATE_LIMIT_AUDIT_EVENTS_PER_MINUTE = env.int("RATE_LIMIT_AUDIT_EVENTS_PER_MINUTE", default=20)
# Idempotency-Key records live at least this long (seed 004: 24 hours).
IDEMPOTENCY_KEY_TTL_SECONDS = env.int("IDEMPOTENCY_KEY_TTL_SECONDS", default=24 * 3600)

# --- Token vault: the API role's client of the vault role (ADR 0012) -----------------------
# Where the vault role's internal API answers. Dev: the `vault` process of `make run`;
# production: required, https. Empty: every vault call is a 503 vault_unavailable.
VAULT_URL = env.str("VAULT_URL", default="")
# CA bundle that signs the vault's TLS certificate; empty means the system's CAs.
VAULT_CA_BUNDLE = env.str("VAULT_CA_BUNDLE", default="")
# Mutual TLS towards the vault's terminator (issue 14): this process's certificate from the platform CA and its
# key (PEM paths, outside the repository). The key `vault_client_certificate` of fintech/process_keys.py: only
# the processes that call the vault read these (production requires them there). Empty: no client certificate
# (dev without the terminator).
_HOLDS_VAULT_CLIENT_CERTIFICATE = process_holds("vault_client_certificate")
VAULT_CLIENT_CERT_PATH = env.str("VAULT_CLIENT_CERT_PATH", default="") if _HOLDS_VAULT_CLIENT_CERTIFICATE else ""
VAULT_CLIENT_KEY_PATH = env.str("VAULT_CLIENT_KEY_PATH", default="") if _HOLDS_VAULT_CLIENT_CERTIFICATE else ""
VAULT_CONNECT_TIMEOUT_SECONDS = env.float("VAULT_CONNECT_TIMEOUT_SECONDS", default=0.5)
VAULT_READ_TIMEOUT_SECONDS = env.float("VAULT_READ_TIMEOUT_SECONDS", default=3.0)
# Attempts of an idempotent call (detokenize, shred, convergent tokenize); others get one.
VAULT_MAX_ATTEMPTS = env.int("VAULT_MAX_ATTEMPTS", default=3)
# The service credential: the API role sends it, the vault role accepts it (and, during a
# rotation, VAULT_SERVICE_TOKEN_PREVIOUS too). Set per environment module: generated in
# dev/test, required in production.
VAULT_SERVICE_TOKEN = ""  # nosec B105 - empty here; each environment module sets it
VAULT_SERVICE_TOKEN_PREVIOUS = ""  # nosec B105 - empty: no rotation in progress
# POST /v1/vault/detokenize: tokens per call, and values per client in a sliding window.
VAULT_DETOKENIZE_MAX_TOKENS = env.int("VAULT_DETOKENIZE_MAX_TOKENS", default=100)
VAULT_DETOKENIZE_RATE = env.str("VAULT_DETOKENIZE_RATE", default="1000/1h")
# Identity capture attempts that reach the vault, per customer (each refusal answers "is this ID taken?").
IDENTITY_CAPTURE_ATTEMPT_RATE = env.str("IDENTITY_CAPTURE_ATTEMPT_RATE", default="10/1d")
# The orphan reaper shreds vault records no row references and nobody was issued for this long.
VAULT_ORPHAN_GRACE_HOURS = env.int("VAULT_ORPHAN_GRACE_HOURS", default=24)
# Vault role: a KEK version may be retired only this long after it stopped being current, so a
# tokenize that wrapped under it just before the rotation has inserted (ADR 0011). Minimum 60.
VAULT_KEK_RETIRE_GRACE_SECONDS = env.int("VAULT_KEK_RETIRE_GRACE_SECONDS", default=3600)
