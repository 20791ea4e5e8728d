"""Test settings: the real PostgreSQL and Redis, with a fast password hasher."""

from fintech.settings.base import *  # noqa: F403
from fintech.settings.base import CACHES, STATIC_ROOT
from fintech.settings.env import dev_secret, env

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or dev_secret("django_secret_key")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # test speed only
# Tests share the Redis server with a running `make run`; keep their keys apart.
REDIS_KEY_PREFIX = "fintech-test"
CACHES["default"]["KEY_PREFIX"] = REDIS_KEY_PREFIX
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# A running `make run` worker shares the broker: tests use their own queue.
CELERY_TASK_DEFAULT_QUEUE = "fintech-test"
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing root
