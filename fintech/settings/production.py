"""Production: every secret from the environment, no defaults; TLS everywhere.

Importing this module without DJANGO_SECRET_KEY (and the other secrets) raises
ImproperlyConfigured, so a misconfigured process never starts.
"""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from fintech.settings.base import *  # noqa: F403
from fintech.settings.base import DATABASE_ROLE, OAUTH2_PROVIDER, databases_for
from fintech.settings.env import env

DEBUG = False
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure"):
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be a random value of at least 50 characters.")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
# No fallback to a local server in production: both URLs must be given.
for _required in ("DATABASE_URL", "VAULT_DATABASE_URL"):
    env.str(_required)
DATABASES = databases_for(DATABASE_ROLE, sslmode=env.str("DATABASE_SSLMODE", default="verify-full"))

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
AUDIT_SIGNING_KEY_PATH = env.str("AUDIT_SIGNING_KEY_PATH")
AUDIT_SIGNING_KEY_GENERATE = False
# ID tokens are signed with a key the operator provides; nothing is generated here.
OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"] = Path(env.str("OIDC_SIGNING_KEY_PATH")).read_text()
OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"] = env.str("OAUTH_ISSUER_URL")
# Production clients redirect to https (mobile apps: claimed https links, RFC 8252 §7.2) or
# to their own private-use scheme listed here; loopback http stays a development convenience.
OAUTH2_PROVIDER["ALLOWED_REDIRECT_URI_SCHEMES"] = ["https", *env.list("OAUTH_EXTRA_REDIRECT_SCHEMES", default=[])]
WEBHOOK_SIGNING_KEY = env.str("WEBHOOK_SIGNING_KEY")
if len(WEBHOOK_SIGNING_KEY) < 50 or len(set(WEBHOOK_SIGNING_KEY)) < 5:
    raise ImproperlyConfigured("WEBHOOK_SIGNING_KEY must be a random value of at least 50 characters.")
# Token vault key-encryption keys: provisioned outside the repository, never generated here.
VAULT_KEK_DIR = env.str("VAULT_KEK_DIR")
VAULT_KEK_GENERATE = False
# Field-encryption keys (PII columns of the main database): held by the API role, not the vault's.
FIELD_KEK_DIR = env.str("FIELD_KEK_DIR")
FIELD_KEK_GENERATE = False
