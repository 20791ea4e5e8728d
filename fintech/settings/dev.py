"""Local development: `make run`. Secrets are generated into var/keys/ on first use."""

from pathlib import Path

from fintech.settings.base import *  # noqa: F403
from fintech.settings.base import (
    DATABASE_ROLE,
    OAUTH2_PROVIDER,
    OIDC_SIGNING_KEY_PATH,
    database_runtime_roles,
    databases_for,
)
from fintech.settings.env import dev_rsa_private_key_pem, dev_secret, env

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or dev_secret("django_secret_key")
# Dev keeps the vault database next to the main one: `make migrate` migrates it, and the
# vault role (fintech.settings.vault) builds on this module. Production's API role does not.
DATABASE_ALIASES = ("default", "vault")
DATABASES = databases_for(DATABASE_ROLE, aliases=DATABASE_ALIASES)
DATABASE_RUNTIME_ROLES = database_runtime_roles(DATABASE_ALIASES)
# `make run` serves plain HTTP on loopback; cookies cannot be Secure there.
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False

# ID-token signing key, generated on first use into var/keys/ (production provides its own).
OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"] = dev_rsa_private_key_pem(Path(OIDC_SIGNING_KEY_PATH))
# The issuer must be one stable URL (it is in every ID token and the iss parameter).
OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"] = (
    OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"] or f"http://127.0.0.1:{env.int('PORT', default=8000)}"
)
# Partner webhook secrets are derived from this key (ledger/outbox/webhooks.py).
WEBHOOK_SIGNING_KEY = env.str("WEBHOOK_SIGNING_KEY", default="") or dev_secret("webhook_signing_key")
WEBHOOK_ALLOW_LOOPBACK_HTTP = True
# Token vault KEKs: generated on first use into var/keys/vault-kek/ (production provisions them).
VAULT_KEK_GENERATE = True
# Field-encryption keys (tokenvault/fields.py), a ring of their own: generated into var/keys/field-kek/.
FIELD_KEK_GENERATE = True
# The vault role of `make run` (Procfile `vault:`), on loopback; both processes read one generated credential.
VAULT_URL = env.str("VAULT_URL", default="") or f"http://127.0.0.1:{env.int('VAULT_PORT', default=8001)}"
VAULT_SERVICE_TOKEN = env.str("VAULT_SERVICE_TOKEN", default="") or dev_secret("vault_service_token")
