"""Production, API role: /v1, OAuth, the admin, workers. Holds no vault database credentials or vault keys.

The token vault is another deployment (`fintech.settings.vault`, ADR 0012),
reached over the network with a service credential: this module never reads
VAULT_DATABASE_URL or VAULT_KEK_DIR.
"""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from fintech.settings.base import OAUTH2_PROVIDER, databases_for
from fintech.settings.env import env
from fintech.settings.production_common import *  # noqa: F403
from fintech.settings.production_common import DATABASE_ALIASES, DATABASE_ROLE, DATABASE_SSLMODE, required_secret

env.str("DATABASE_URL")  # no fallback to a local server
DATABASES = databases_for(DATABASE_ROLE, aliases=DATABASE_ALIASES, sslmode=DATABASE_SSLMODE)
AUDIT_SIGNING_KEY_PATH = env.str("AUDIT_SIGNING_KEY_PATH")
# What the verifier trusts (issue 12): public keys from files, never from a table the runtime role can write.
AUDIT_VERIFY_KEY_PATHS = env.list("AUDIT_VERIFY_KEY_PATHS")
# Staff grants for the vault role's key commands (ADR 0015): signed here, with a key provisioned outside the repo.
STAFF_GRANT_SIGNING_KEY_PATH = env.str("STAFF_GRANT_SIGNING_KEY_PATH")
# ID tokens are signed with a key the operator provides; nothing is generated here.
OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"] = Path(env.str("OIDC_SIGNING_KEY_PATH")).read_text()
OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"] = env.str("OAUTH_ISSUER_URL")
# Production clients redirect to https (mobile apps: claimed https links, RFC 8252 §7.2) or
# to their own private-use scheme listed here; loopback http stays a development convenience.
OAUTH2_PROVIDER["ALLOWED_REDIRECT_URI_SCHEMES"] = ["https", *env.list("OAUTH_EXTRA_REDIRECT_SCHEMES", default=[])]
WEBHOOK_SIGNING_KEY = required_secret("WEBHOOK_SIGNING_KEY")
# Field-encryption keys (PII columns of the main database): held by the API role, not the vault's.
FIELD_KEK_DIR = env.str("FIELD_KEK_DIR")
FIELD_KEK_GENERATE = False
# The vault role, over TLS, with the service credential (ADR 0012).
VAULT_URL = env.str("VAULT_URL")
if not VAULT_URL.startswith("https://"):
    raise ImproperlyConfigured("VAULT_URL must be an https:// URL in production.")
VAULT_SERVICE_TOKEN = required_secret("VAULT_SERVICE_TOKEN")
