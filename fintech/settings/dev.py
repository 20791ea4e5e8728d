"""Local development: `make run`. Secrets are generated into var/keys/ on first use."""

from fintech.settings.base import *  # noqa: F403
from fintech.settings.env import dev_secret, env

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or dev_secret("django_secret_key")
# `make run` serves plain HTTP on loopback; cookies cannot be Secure there.
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
