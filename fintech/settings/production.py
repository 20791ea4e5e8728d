"""Production: every secret from the environment, no defaults; TLS everywhere.

Importing this module without DJANGO_SECRET_KEY (and the other secrets) raises
ImproperlyConfigured, so a misconfigured process never starts.
"""

from django.core.exceptions import ImproperlyConfigured

from fintech.settings.base import *  # noqa: F403
from fintech.settings.env import env

DEBUG = False
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure"):
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be a random value of at least 50 characters.")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
DATABASES = {
    "default": env.db("DATABASE_URL"),
    "vault": env.db("VAULT_DATABASE_URL"),
}
for _alias in DATABASES.values():
    _alias["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE_SECONDS", default=60)
    _alias["CONN_HEALTH_CHECKS"] = True
    _alias["ATOMIC_REQUESTS"] = False
    _alias.setdefault("OPTIONS", {}).setdefault("sslmode", env.str("DATABASE_SSLMODE", default="verify-full"))

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
