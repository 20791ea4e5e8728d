"""Test settings: the real PostgreSQL and Redis, with a fast password hasher.

The pytest process plays every role (FINTECH_PROCESS unset: every key); a child
process started with FINTECH_PROCESS (or the vault's settings) loads only its
role's keys, as in production (fintech/process_keys.py).
"""

from pathlib import Path

from fintech.settings.base import *  # noqa: F403
from fintech.settings.base import (
    AUDIT_SEALER_PROCESS,
    CACHES,
    FINTECH_PROCESS,
    OAUTH2_PROVIDER,
    OIDC_SIGNING_KEY_PATH,
    PKI_CERT_TASKS,
    SPECTACULAR_SETTINGS,
    STATIC_ROOT,
    audit_sealer_databases,
    audit_signing_key_file,
    database_runtime_roles,
    databases_for,
    swagger_ui_oauth,
)
from fintech.settings.env import VAR_DIR, dev_rsa_private_key_pem, dev_secret, env, process_holds

# pytest-django creates the test databases and migrates them, which is the owner's
# job; tests that prove what the runtime role may do connect as it explicitly.
DATABASE_ALIASES = ("default", "vault")
DATABASES = databases_for("owner", aliases=DATABASE_ALIASES)
DATABASE_RUNTIME_ROLES = database_runtime_roles(DATABASE_ALIASES)
# The vault has a Django key of its own, as in production; beat holds none.
_SECRET_KEY_FILE = "vault_django_secret_key" if FINTECH_PROCESS == "vault" else "django_secret_key"
SECRET_KEY = (
    (env.str("DJANGO_SECRET_KEY", default="") or dev_secret(_SECRET_KEY_FILE))
    if process_holds("django_secret_key")
    else ""
)
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
# The same for the platform CA's queue (ADR 0018), and a CRL file of the run's own.
PKI_CERT_QUEUE = f"cert-test{_TEST_DATABASE_SUFFIX}"
CELERY_TASK_ROUTES = {name: {"queue": PKI_CERT_QUEUE} for name in PKI_CERT_TASKS}
PKI_CRL_PATH = env.str("PKI_CRL_PATH", default="") or str(VAR_DIR / "pki" / f"crl-test{_TEST_DATABASE_SUFFIX}.pem")
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing root
# Transactional tests end with a flush; let it empty write-once tables (owner role only).
WRITE_ONCE_FLUSH_ALLOWED = True
for _config in DATABASES.values():
    _config["TEST"] = {"NAME": f"test_{_config['NAME']}{_TEST_DATABASE_SUFFIX}"}
# The audit sealer (issue 12). A child process started with AUDIT_SEALER_PROCESS=1 (the root conftest's Celery
# worker) seals through the sealer's own login, as in dev and production. In-process tests play every role, the
# sealer's too, on the test's own connection, so that sealing sees the rows the test has not committed.
DATABASES, AUDIT_SEALER_DATABASE = audit_sealer_databases(DATABASES, sealer=AUDIT_SEALER_PROCESS)
AUDIT_SEALER_PROCESS = process_holds("audit_signing_key")  # the pytest process (no FINTECH_PROCESS) or a worker
AUDIT_SIGNING_KEY_PATH = audit_signing_key_file() if AUDIT_SEALER_PROCESS else ""
# No checkpoint export unless a test asks for one (its own tmp_path): the export file outlives each test's
# rolled-back database, and would then name checkpoints that database never had.
AUDIT_CHECKPOINT_EXPORT_DIR = env.str("AUDIT_CHECKPOINT_EXPORT_DIR", default="")

# ID-token signing key, generated on first use into var/keys/ (production provides its own).
if process_holds("oidc_signing_key"):
    OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"] = dev_rsa_private_key_pem(Path(OIDC_SIGNING_KEY_PATH))
OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"] = OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"] or "http://testserver"
# The docs client's redirect must be a loopback URL (accounts.oauth.clients): a live server's issuer when a test
# starts one (OAUTH_ISSUER_URL), else what `make run` would use; never http://testserver.
SPECTACULAR_SETTINGS = swagger_ui_oauth(
    SPECTACULAR_SETTINGS, env.str("OAUTH_ISSUER_URL", default="") or "http://127.0.0.1:8000"
)
# Partner webhook secrets are derived from this key (ledger/outbox/webhooks.py).
WEBHOOK_SIGNING_KEY = (
    (env.str("WEBHOOK_SIGNING_KEY", default="") or dev_secret("webhook_signing_key"))
    if process_holds("webhook_signing_key")
    else ""
)
WEBHOOK_ALLOW_LOOPBACK_HTTP = True
# No worker listens on the shared broker in tests; outbox tests turn it on, and so does
# `make bench` (its server pays the publish a production request pays).
OUTBOX_DELIVERY_ON_COMMIT = env.bool("OUTBOX_DELIVERY_ON_COMMIT", default=False)
# Token vault KEKs: generated on first use into var/keys/vault-kek/ (production provisions them).
VAULT_KEK_GENERATE = process_holds("vault_kek")
# Field-encryption keys (tokenvault/fields.py), a ring of their own: generated into var/keys/field-kek/.
FIELD_KEK_GENERATE = process_holds("field_kek")
# No vault role listens in tests unless a test starts one (root conftest `vault_live`):
# an unset URL makes every vault call a 503, never a write into a developer's running vault.
VAULT_URL = ""
VAULT_SERVICE_TOKEN = (
    (env.str("VAULT_SERVICE_TOKEN", default="") or dev_secret("vault_service_token"))
    if process_holds("vault_service_token")
    else ""
)
