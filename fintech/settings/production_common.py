"""Production values shared by both roles: the API role (`production`) and the vault role (`vault`).

Every secret comes from the environment with no default; TLS everywhere.
Importing this module without DJANGO_SECRET_KEY (and the other secrets)
raises ImproperlyConfigured, so a misconfigured process never starts. Each
role's module adds only what that role holds (ADR 0012): the API role never
reads the vault's database URL or keys, the vault role never reads the OAuth,
webhook or field-encryption keys. Within a role, each process (FINTECH_PROCESS,
required here) loads only its own keys (fintech/process_keys.py).
"""

from django.core.exceptions import ImproperlyConfigured

from fintech.process_keys import PROCESS_KEYS, PROCESS_VARIABLE
from fintech.settings.base import *  # noqa: F403
from fintech.settings.base import FINTECH_PROCESS
from fintech.settings.env import env, process_holds


def required_secret(name: str) -> str:
    """A secret from the environment that must look random: at least 50 characters, not one repeated few."""
    value = env.str(name)
    if len(value) < 50 or len(set(value)) < 5 or value.startswith("django-insecure"):
        raise ImproperlyConfigured(f"{name} must be a random value of at least 50 characters.")
    return value


if not FINTECH_PROCESS:
    raise ImproperlyConfigured(f"{PROCESS_VARIABLE} is required in production: one of {', '.join(PROCESS_KEYS)}.")
DEBUG = False
if process_holds("django_secret_key"):
    SECRET_KEY = required_secret("DJANGO_SECRET_KEY")
else:
    # Beat signs nothing (it puts task names on the broker): it holds no Django key, so Django's own
    # check for one does not apply; fintech.checks.process_keys_check makes sure it holds none.
    SECRET_KEY = ""  # nosec B105 - empty: beat holds no Django key
    SILENCED_SYSTEM_CHECKS = ["security.W009"]
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
# No fallback to a local server in production: every database URL a role holds must be given
# (each role's module requires its own: DATABASE_URL here, the vault's in fintech.settings.vault).
DATABASE_SSLMODE = env.str("DATABASE_SSLMODE", default="verify-full")

SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# TLS terminates at the trusted proxy, which sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = 31_536_000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_NAME = "__Host-sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken"
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
DEMO_DATA_ALLOWED = False
AUDIT_SIGNING_KEY_GENERATE = False
STAFF_GRANT_KEY_GENERATE = False
