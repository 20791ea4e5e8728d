"""Production, API role: /v1, OAuth, the admin, workers. Holds no vault database credentials or vault keys.

The token vault is another deployment (`fintech.settings.vault`, ADR 0012),
reached over the network with a service credential: this module never reads
VAULT_DATABASE_URL or VAULT_KEK_DIR.

One module for the API role's processes (FINTECH_PROCESS: web, worker, certworker, beat,
ops, terminator); each reads and requires only its own keys (fintech/process_keys.py).
"""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from fintech.process_keys import PROCESSES_WITHOUT_DATABASE
from fintech.settings.base import AUDIT_SEALER_PROCESS, OAUTH2_PROVIDER, audit_sealer_databases, databases_for
from fintech.settings.env import env, process_holds
from fintech.settings.production_common import *  # noqa: F403
from fintech.settings.production_common import (
    DATABASE_ALIASES,
    DATABASE_ROLE,
    DATABASE_SSLMODE,
    FINTECH_PROCESS,
    required_secret,
)

if FINTECH_PROCESS == "vault":
    raise ImproperlyConfigured("The vault process runs DJANGO_SETTINGS_MODULE=fintech.settings.vault.")
if FINTECH_PROCESS in PROCESSES_WITHOUT_DATABASE:
    # Beat only puts scheduled task names on the broker: it holds no database credential.
    DATABASES, DATABASE_RUNTIME_ROLES = {}, {}
else:
    env.str("DATABASE_URL")  # no fallback to a local server
    DATABASES = databases_for(DATABASE_ROLE, aliases=DATABASE_ALIASES, sslmode=DATABASE_SSLMODE)
# The audit sealer (issue 12): the worker started with AUDIT_SEALER_PROCESS=1 alone holds the signing key, its own
# database login and the checkpoint export; no other process reads any of the three.
DATABASES, AUDIT_SEALER_DATABASE = audit_sealer_databases(
    DATABASES, sealer=AUDIT_SEALER_PROCESS, sslmode=DATABASE_SSLMODE
)
if AUDIT_SEALER_PROCESS:
    if AUDIT_SEALER_DATABASE == "default":
        raise ImproperlyConfigured("AUDIT_SEALER_DATABASE_URL is required in the audit sealer process.")
    AUDIT_SIGNING_KEY_PATH = env.str("AUDIT_SIGNING_KEY_PATH")
    AUDIT_CHECKPOINT_EXPORT_DIR = env.str("AUDIT_CHECKPOINT_EXPORT_DIR")
else:
    AUDIT_CHECKPOINT_EXPORT_DIR = env.str("AUDIT_CHECKPOINT_EXPORT_DIR", default="")  # read, to compare, if mounted
# What the verifier trusts (issue 12): public keys from files, never from a table the runtime role can write.
if process_holds("audit_verify_keys"):
    AUDIT_VERIFY_KEY_PATHS = env.list("AUDIT_VERIFY_KEY_PATHS")
# Staff grants for the vault role's key commands (ADR 0015): signed by operators (process `ops`), with a key
# provisioned outside the repo.
if process_holds("staff_grant_signing_key"):
    STAFF_GRANT_SIGNING_KEY_PATH = env.str("STAFF_GRANT_SIGNING_KEY_PATH")
# The platform CA's issuing key (ADR 0018): the cert worker alone, a credential; nothing is generated in production.
if process_holds("pki_issuing_key"):
    PKI_ISSUING_KEY_PATH = env.str("PKI_ISSUING_KEY_PATH")
# Who may make the cert worker sign: grants from `ops` (the operator, authenticated there), checked here.
if process_holds("staff_grant_verify_key"):
    STAFF_GRANT_VERIFY_KEY_PATH = env.str("STAFF_GRANT_VERIFY_KEY_PATH")
PKI_KEY_GENERATE = False
# ID tokens are signed (by the web process) with a key the operator provides; nothing is generated here.
if process_holds("oidc_signing_key"):
    OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"] = Path(env.str("OIDC_SIGNING_KEY_PATH")).read_text()
OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"] = env.str("OAUTH_ISSUER_URL")
# Production clients redirect to https (mobile apps: claimed https links, RFC 8252 §7.2) or
# to their own private-use scheme listed here; loopback http stays a development convenience.
OAUTH2_PROVIDER["ALLOWED_REDIRECT_URI_SCHEMES"] = ["https", *env.list("OAUTH_EXTRA_REDIRECT_SCHEMES", default=[])]
# Signs partner webhooks: the worker, which delivers them.
if process_holds("webhook_signing_key"):
    WEBHOOK_SIGNING_KEY = required_secret("WEBHOOK_SIGNING_KEY")
# Field-encryption keys (PII columns of the main database): the web process's, not the vault's.
if process_holds("field_kek"):
    FIELD_KEK_DIR = env.str("FIELD_KEK_DIR")
FIELD_KEK_GENERATE = False
# The vault role, over TLS, with the service credential (ADR 0012): web, and the worker's orphan reaper.
if process_holds("vault_service_token"):
    VAULT_URL = env.str("VAULT_URL")
    if not VAULT_URL.startswith("https://"):
        raise ImproperlyConfigured("VAULT_URL must be an https:// URL in production.")
    VAULT_SERVICE_TOKEN = required_secret("VAULT_SERVICE_TOKEN")
# Mutual TLS to the vault's terminator (ADR 0018): the processes that call the vault present a platform
# certificate; both paths are credentials of their unit. Without them the terminator refuses every call.
if process_holds("vault_client_certificate"):
    VAULT_CLIENT_CERT_PATH = env.str("VAULT_CLIENT_CERT_PATH", default="")
    VAULT_CLIENT_KEY_PATH = env.str("VAULT_CLIENT_KEY_PATH", default="")
    if not (VAULT_CLIENT_CERT_PATH and VAULT_CLIENT_KEY_PATH):
        raise ImproperlyConfigured(
            f"VAULT_CLIENT_CERT_PATH and VAULT_CLIENT_KEY_PATH are required in the {FINTECH_PROCESS} process."
        )
# The TLS terminator (`tls_terminator`, FINTECH_PROCESS=terminator): its server certificate and key (credentials of
# its unit), its two listeners and the two Unix sockets behind them. Nothing falls back to dev's loopback values.
if process_holds("terminator_server_key"):
    PKI_TERMINATOR_CERT_PATH = env.str("PKI_TERMINATOR_CERT_PATH", default="")
    PKI_TERMINATOR_KEY_PATH = env.str("PKI_TERMINATOR_KEY_PATH", default="")
    if not (PKI_TERMINATOR_CERT_PATH and PKI_TERMINATOR_KEY_PATH):
        raise ImproperlyConfigured("PKI_TERMINATOR_CERT_PATH and PKI_TERMINATOR_KEY_PATH are required (terminator).")
    PKI_TERMINATOR_VAULT_LISTEN = env.str("PKI_TERMINATOR_VAULT_LISTEN")
    PKI_TERMINATOR_PARTNER_LISTEN = env.str("PKI_TERMINATOR_PARTNER_LISTEN")
    for _name, _listen in (
        ("PKI_TERMINATOR_VAULT_LISTEN", PKI_TERMINATOR_VAULT_LISTEN),
        ("PKI_TERMINATOR_PARTNER_LISTEN", PKI_TERMINATOR_PARTNER_LISTEN),
    ):
        _host, _, _port = _listen.rpartition(":")
        if not _host or _host.startswith("[") or not _port.isdigit():
            raise ImproperlyConfigured(f"{_name} must be an IPv4 address or host name and a port, e.g. 10.0.0.5:8443.")
    # The vault and the web listen on a Unix socket only in production (fintech.E007): nginx's upstreams are those.
    PKI_TERMINATOR_VAULT_UPSTREAM = env.str("PKI_TERMINATOR_VAULT_UPSTREAM")
    if not (PKI_TERMINATOR_VAULT_UPSTREAM.startswith("http://unix:/") and PKI_TERMINATOR_VAULT_UPSTREAM.endswith(":")):
        raise ImproperlyConfigured(
            "PKI_TERMINATOR_VAULT_UPSTREAM must be the vault's Unix socket as nginx names it: "
            "http://unix:/run/fintech-vault/vault.sock:"
        )
    PKI_TERMINATOR_WEB_SOCKET = env.str("PKI_TERMINATOR_WEB_SOCKET")
    if not PKI_TERMINATOR_WEB_SOCKET.startswith("/"):
        raise ImproperlyConfigured("PKI_TERMINATOR_WEB_SOCKET must be the web's socket's absolute path.")
