"""Test settings: the real PostgreSQL and Redis, with a fast password hasher."""

from pathlib import Path

from fintech.settings.base import *  # noqa: F403
from fintech.settings.base import (
    CACHES,
    OAUTH2_PROVIDER,
    OIDC_SIGNING_KEY_PATH,
    STATIC_ROOT,
    database_runtime_roles,
    databases_for,
)
from fintech.settings.env import dev_rsa_private_key_pem, dev_secret, env

# pytest-django creates the test databases and migrates them, which is the owner's
# job; tests that prove what the runtime role may do connect as it explicitly.
DATABASE_ALIASES = ("default", "vault")
DATABASES = databases_for("owner", aliases=DATABASE_ALIASES)
DATABASE_RUNTIME_ROLES = database_runtime_roles(DATABASE_ALIASES)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or dev_secret("django_secret_key")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # test speed only
# Lets two test runs share one PostgreSQL, Redis and broker without sharing databases, keys or queues.
_TEST_DATABASE_SUFFIX = env.str("TEST_DATABASE_SUFFIX", default="")
# Tests share the Redis server with a running `make run`; keep their keys apart.
REDIS_KEY_PREFIX = f"fintech-test{_TEST_DATABASE_SUFFIX}"
CACHES["default"]["KEY_PREFIX"] = REDIS_KEY_PREFIX
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# A running `make run` worker shares the broker: tests use their own queue.
CELERY_TASK_DEFAULT_QUEUE = f"fintech-test{_TEST_DATABASE_SUFFIX}"
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing root
# Transactional tests end with a flush; let it empty write-once tables (owner role only).
WRITE_ONCE_FLUSH_ALLOWED = True
for _config in DATABASES.values():
    _config["TEST"] = {"NAME": f"test_{_config['NAME']}{_TEST_DATABASE_SUFFIX}"}

# ID-token signing key, generated on first use into var/keys/ (production provides its own).
OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"] = dev_rsa_private_key_pem(Path(OIDC_SIGNING_KEY_PATH))
OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"] = OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"] or "http://testserver"
# Partner webhook secrets are derived from this key (ledger/outbox/webhooks.py).
WEBHOOK_SIGNING_KEY = env.str("WEBHOOK_SIGNING_KEY", default="") or dev_secret("webhook_signing_key")
WEBHOOK_ALLOW_LOOPBACK_HTTP = True
# No worker listens on the shared broker in tests; outbox tests turn it on, and so does
# `make bench` (its server pays the publish a production request pays).
OUTBOX_DELIVERY_ON_COMMIT = env.bool("OUTBOX_DELIVERY_ON_COMMIT", default=False)
# Token vault KEKs: generated on first use into var/keys/vault-kek/ (production provisions them).
VAULT_KEK_GENERATE = True
# Field-encryption keys (tokenvault/fields.py), a ring of their own: generated into var/keys/field-kek/.
FIELD_KEK_GENERATE = True
# No vault role listens in tests unless a test starts one (root conftest `vault_live`):
# an unset URL makes every vault call a 503, never a write into a developer's running vault.
VAULT_URL = ""
VAULT_SERVICE_TOKEN = env.str("VAULT_SERVICE_TOKEN", default="") or dev_secret("vault_service_token")
