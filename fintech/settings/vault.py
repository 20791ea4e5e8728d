"""The vault role (ADR 0012): a process serving only the token vault's internal API.

It is the only process that holds the vault database (`vault`) and the vault's
key-encryption keys. Its main-database connection (`default`) is for audit rows
only: VAULT_AUDIT_DATABASE_URL, a role that may INSERT audit events and nothing
else (fintech/db_privileges.py), in every environment. The API role
reaches it over the network (`tokenvault.client`) with a service credential.
Nothing else is served: no /v1, no OAuth, no admin, no metrics page, no
static files (tokenvault/internal_urls.py).

One module for every environment, chosen by FINTECH_ENV:

    production (the default)  production_common + the vault's secrets, all required
    dev                        dev settings (`make run`, Procfile `vault:`)
    test                       test settings (the root conftest's vault process)

The default is production on purpose: a vault process started without
FINTECH_ENV refuses to start for want of its secrets, instead of quietly
generating keys.

It is the `vault` process (fintech/process_keys.py) in every environment: the
environment module below loads (and in dev generates) only the vault's keys.
"""

from django.core.exceptions import ImproperlyConfigured

from fintech.settings.env import env, process_select

process_select("vault")  # before any other settings module: they load only this process's keys
FINTECH_ENV = env.str("FINTECH_ENV", default="production")
if FINTECH_ENV == "production":
    from fintech.settings.production_common import *  # noqa: F403
elif FINTECH_ENV == "dev":
    from fintech.settings.dev import *  # noqa: F403
elif FINTECH_ENV == "test":
    from fintech.settings.test import *  # noqa: F403
else:
    raise ImproperlyConfigured(f"FINTECH_ENV must be production, dev or test, not {FINTECH_ENV!r}.")

# INSTALLED_APPS and REST_FRAMEWORK below are the environment module's, narrowed.
from fintech.settings.base import (  # noqa: E402
    AUDIT_SEALER_ALIAS,
    DATABASE_ROLE,
    database_config,
    database_runtime_roles,
    database_urls,
    databases_for,
)

SERVICE_ROLE = "vault"
ROOT_URLCONF = "tokenvault.internal_urls"

# No admin, sessions, messages or static files: nothing here is for a browser.
_NOT_IN_THE_VAULT = {
    "accounts.admin_site.FintechAdminConfig",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "pki",  # the platform CA is the API role's (ADR 0018)
}
INSTALLED_APPS = [app for app in INSTALLED_APPS if app not in _NOT_IN_THE_VAULT]
# Request id, one access-log line per call (route and status, never a body), body size limit,
# the security headers. No session, CSRF cookie or login: callers authenticate per request
# with the service credential (tokenvault/service_auth.py).
MIDDLEWARE = [
    "fintech.middleware.request_context.RequestContextMiddleware",
    "fintech.middleware.observability.RequestObservabilityMiddleware",
    "fintech.middleware.body_size.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",  # inert for the API views; kept so nothing slips past it
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Per calling address, fail closed; its buckets live under the vault's own key prefix (ADR 0017).
    "fintech.middleware.rate_limit.RateLimitMiddleware",
]
# The vault's Redis namespace and login: VAULT_REDIS_URL (its own ACL user, allowed only keys under
# its prefix) when set; otherwise the shared REDIS_URL, still under a prefix of its own.
REDIS_URL = env.str("VAULT_REDIS_URL", default="") or REDIS_URL  # production: required, below
REDIS_KEY_PREFIX = f"{REDIS_KEY_PREFIX}-vault"
CACHES = {"default": {**CACHES["default"], "LOCATION": REDIS_URL, "KEY_PREFIX": REDIS_KEY_PREFIX}}
# The internal views name their own authentication (tokenvault/internal_apis.py); the defaults
# authenticate nobody and admit nobody, so a view that forgets is closed.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": None,  # an internal API: no published schema
}

DATABASE_ALIASES = ("default", "vault")
VAULT_URL = ""  # the vault calls nobody
VAULT_SERVICE_TOKEN_PREVIOUS = env.str("VAULT_SERVICE_TOKEN_PREVIOUS", default="")
if FINTECH_ENV == "production":
    from fintech.settings.production_common import DATABASE_SSLMODE, required_secret

    env.str("VAULT_DATABASE_URL")  # no fallback to a local server
    # `default` is the audit-append role's, never DATABASE_URL's: required, no fallback.
    _AUDIT_DATABASE_URL = env.str("VAULT_AUDIT_DATABASE_URL")
    DATABASES = {
        "default": database_config(_AUDIT_DATABASE_URL, sslmode=DATABASE_SSLMODE),
        **databases_for(DATABASE_ROLE, aliases=("vault",), sslmode=DATABASE_SSLMODE),
    }
    DATABASE_RUNTIME_ROLES = {
        "default": DATABASES["default"]["USER"],
        **database_runtime_roles(("vault",)),
    }
    # Key-encryption keys: provisioned outside the repository, never generated here.
    VAULT_KEK_DIR = env.str("VAULT_KEK_DIR")
    VAULT_KEK_GENERATE = False
    VAULT_SERVICE_TOKEN = required_secret("VAULT_SERVICE_TOKEN")
    # The public half only: the vault checks staff grants, never signs them (ADR 0015).
    STAFF_GRANT_VERIFY_KEY_PATH = env.str("STAFF_GRANT_VERIFY_KEY_PATH")
    STAFF_GRANT_KEY_GENERATE = False
    # django-oauth-toolkit is installed only because account models point at its tables;
    # the vault serves no OAuth, but its deploy check still wants production's https-only rule.
    OAUTH2_PROVIDER = {**OAUTH2_PROVIDER, "ALLOWED_REDIRECT_URI_SCHEMES": ["https"]}
    if VAULT_SERVICE_TOKEN_PREVIOUS:
        VAULT_SERVICE_TOKEN_PREVIOUS = required_secret("VAULT_SERVICE_TOKEN_PREVIOUS")
    # Its own Redis login for its request limiter (ADR 0017): never a fallback to a shared default.
    REDIS_URL = env.str("VAULT_REDIS_URL")
    CACHES = {"default": {**CACHES["default"], "LOCATION": REDIS_URL}}
else:
    # Dev/test: the environment module already holds both databases and generates keys;
    # an explicit directory (the test vault process gets one per session) wins.
    VAULT_KEK_DIR = env.str("VAULT_KEK_DIR", default="") or None
    # `default` becomes the audit-append role (scripts/services.py writes its URL). Without one
    # (an operator's own single DATABASE_URL), the main runtime URL, as before the role existed.
    _AUDIT_DATABASE_URL = env.str("VAULT_AUDIT_DATABASE_URL", default="") or database_urls("default")[0]
    _audit_database = database_config(_AUDIT_DATABASE_URL)
    # Keep the environment module's TEST entry; the vault process never creates databases.
    DATABASES = {**DATABASES, "default": {**_audit_database, "TEST": DATABASES["default"].get("TEST", {})}}
    DATABASE_RUNTIME_ROLES = {**DATABASE_RUNTIME_ROLES, "default": _audit_database["USER"]}
# The vault never seals the audit trail (issue 12): no sealer login, no signing key, whatever the environment says.
AUDIT_SEALER_PROCESS = False
AUDIT_SIGNING_KEY_PATH = ""
AUDIT_SEALER_DATABASE = "default"
DATABASES.pop(AUDIT_SEALER_ALIAS, None)
