"""Which process holds which key: the one rule the settings, the deploy check and the deploy files follow.

Every process names its role with FINTECH_PROCESS (the vault's settings module
names itself). Its settings load only the keys listed for that role here, in
production and in dev alike; `fintech.checks.process_keys_check` (tagged
deploy) refuses settings or an environment holding any other key, and
`fintech/tests/test_deploy_files.py` holds `deploy/` (systemd units,
environment files, install script, the key table in `deploy/README.md`) to the
same mapping, so none of them can drift from it.

Unset FINTECH_PROCESS means "every key" and is accepted only by the dev and
test settings: a developer's `manage.py` console and the pytest process, which
play every role in one process (as they hold both databases). Production
settings refuse to start without a role; every process `make run` starts sets
its own (Procfile).

Pure data and small functions: the settings import this module before Django is set up.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

PROCESS_VARIABLE = "FINTECH_PROCESS"


@dataclass(frozen=True)
class Key:
    """One secret (or public key) and where it shows up in a process."""

    what: str
    # Environment variables that carry it: the value itself, or the path of the file or directory holding it.
    variables: tuple[str, ...]
    # Settings that hold it once loaded (truthy means held); "A.B" is entry B of the dict setting A.
    settings: tuple[str, ...]
    # "value": a secret given in the process's environment file; "file": a private key file (a systemd
    # credential); "directory": a key ring the process's own user owns (mode 0700); "public": public key files.
    form: str
    # False: a holder may run without it (a second, optional variable of the same key is never required).
    required: bool = True
    # How many of `variables`, the first ones, a holder must set (a certificate and its key: both).
    required_variables: int = 1


KEYS: dict[str, Key] = {
    "django_secret_key": Key(
        "Django SECRET_KEY: sessions, CSRF, password reset links, login throttle and idempotency HMACs, "
        "audit verification result MACs (one value for web, worker and ops; the vault has its own)",
        ("DJANGO_SECRET_KEY",),
        ("SECRET_KEY", "SECRET_KEY_FALLBACKS"),
        "value",
    ),
    "oidc_signing_key": Key(
        "RSA key signing OpenID Connect ID tokens (and previous keys still in the JWKS)",
        ("OIDC_SIGNING_KEY_PATH", "OIDC_INACTIVE_KEY_PATHS"),
        (
            "OAUTH2_PROVIDER.OIDC_RSA_PRIVATE_KEY",
            "OAUTH2_PROVIDER.OIDC_RSA_PRIVATE_KEYS_INACTIVE",
            "OIDC_SIGNING_KEY_PATH",
            "OIDC_INACTIVE_KEY_PATHS",
        ),
        "file",
    ),
    "webhook_signing_key": Key(
        "HMAC key partner webhook secrets are derived from (signs every delivery)",
        ("WEBHOOK_SIGNING_KEY",),
        ("WEBHOOK_SIGNING_KEY",),
        "value",
    ),
    "field_kek": Key(
        "Field-encryption key ring: customer PII columns of the main database (ADR 0013)",
        ("FIELD_KEK_DIR",),
        ("FIELD_KEK_DIR", "FIELD_KEK_GENERATE"),
        "directory",
    ),
    "vault_kek": Key(
        "Token vault key-encryption keys (ADR 0011)",
        ("VAULT_KEK_DIR",),
        ("VAULT_KEK_DIR", "VAULT_KEK_GENERATE"),
        "directory",
    ),
    "vault_service_token": Key(
        "Service credential of the API side towards the vault role (ADR 0012)",
        ("VAULT_SERVICE_TOKEN",),
        ("VAULT_SERVICE_TOKEN",),
        "value",
    ),
    "vault_service_token_previous": Key(
        "The previous service credential, accepted by the vault during a rotation",
        ("VAULT_SERVICE_TOKEN_PREVIOUS",),
        ("VAULT_SERVICE_TOKEN_PREVIOUS",),
        "value",
        required=False,
    ),
    "audit_signing_key": Key(
        "Ed25519 key the sealer signs audit checkpoints with (ADR 0005)",
        ("AUDIT_SIGNING_KEY_PATH",),
        ("AUDIT_SIGNING_KEY_PATH", "AUDIT_SIGNING_KEY_GENERATE"),
        "file",
    ),
    "audit_verify_keys": Key(
        "Public keys audit verification trusts (current and retired sealer keys)",
        ("AUDIT_VERIFY_KEY_PATHS",),
        ("AUDIT_VERIFY_KEY_PATHS",),
        "public",
    ),
    "staff_grant_signing_key": Key(
        "Ed25519 key signing staff grants for the vault role's key commands (ADR 0015)",
        ("STAFF_GRANT_SIGNING_KEY_PATH",),
        ("STAFF_GRANT_SIGNING_KEY_PATH", "STAFF_GRANT_KEY_GENERATE"),
        "file",
    ),
    "staff_grant_verify_key": Key(
        "Public key the vault checks staff grants with",
        ("STAFF_GRANT_VERIFY_KEY_PATH",),
        ("STAFF_GRANT_VERIFY_KEY_PATH",),
        "public",
    ),
    "pki_issuing_key": Key(
        "ECDSA key of the platform's issuing intermediate CA: signs service certificates and the CRL (ADR 0018)",
        ("PKI_ISSUING_KEY_PATH",),
        ("PKI_ISSUING_KEY_PATH", "PKI_KEY_GENERATE"),
        "file",
    ),
    "vault_client_certificate": Key(
        "This process's certificate and private key (platform CA) for mutual TLS to the vault's terminator (ADR 0018)",
        ("VAULT_CLIENT_CERT_PATH", "VAULT_CLIENT_KEY_PATH"),
        ("VAULT_CLIENT_CERT_PATH", "VAULT_CLIENT_KEY_PATH"),
        "file",
        required_variables=2,
    ),
    "terminator_server_key": Key(
        "The TLS terminator's server certificate (leaf then chain, public) and its private key: what nginx proves "
        "itself with to the vault's callers and to partners (ADR 0018)",
        ("PKI_TERMINATOR_CERT_PATH", "PKI_TERMINATOR_KEY_PATH"),
        ("PKI_TERMINATOR_CERT_PATH", "PKI_TERMINATOR_KEY_PATH"),
        "file",
        required_variables=2,
    ),
    "metrics_token": Key(
        "Bearer token the Prometheus scraper sends to /metrics",
        ("METRICS_TOKEN",),
        ("METRICS_TOKEN",),
        "value",
        required=False,
    ),
}

# The rule. web: gunicorn serving /v1, OAuth and the admin. worker: Celery (the audit sealer, outbox
# emails and webhooks, expiry and reaper tasks). certworker: Celery on the `cert` queue alone, concurrency 1:
# the only process that signs certificates and the CRL (ADR 0018), so the issuing key sits in no process that
# also runs the other tasks. beat: Celery beat, which only puts scheduled task
# names on the broker. vault: the token vault role (fintech.settings.vault). ops: operator commands
# that need none of the service keys (vault_grant, audit_verify, ledger_deposit, ...) and migrations;
# commands needing a service's key run as that service (deploy/README.md, "Operator commands").
# terminator: `manage.py tls_terminator`, the nginx sidecar in front of the vault (mutual TLS) and of the web
# role's socket for partners; it reads `Certificate` rows and the CRL to follow renewals and revocations.
PROCESS_KEYS: dict[str, frozenset[str]] = {
    "web": frozenset(
        {
            "django_secret_key",
            "oidc_signing_key",
            "field_kek",
            "vault_service_token",
            "vault_client_certificate",
            "audit_verify_keys",
            "metrics_token",
        }
    ),
    "worker": frozenset(
        {
            "django_secret_key",
            "webhook_signing_key",
            "vault_service_token",
            "vault_client_certificate",
            "audit_signing_key",
            "audit_verify_keys",
        }
    ),
    # Signs what a staff grant from `ops` asks for (checked with the grant public key), and the daily renewals
    # and CRL. No Django key: like beat, it signs no session, token or MAC.
    "certworker": frozenset(
        {
            "pki_issuing_key",
            "staff_grant_verify_key",
        }
    ),
    "beat": frozenset(),
    "vault": frozenset(
        {
            "django_secret_key",
            "vault_kek",
            "vault_service_token",
            "vault_service_token_previous",
            "staff_grant_verify_key",
        }
    ),
    "ops": frozenset(
        {
            "django_secret_key",
            "staff_grant_signing_key",
            "audit_verify_keys",
        }
    ),
    # Its TLS server key alone. No Django key (it serves no Django request and signs no session or MAC), no
    # staff grant key (it used to run as ops, which holds the grant signing key), no vault credential: the
    # vault's service token is checked behind it, by the vault.
    "terminator": frozenset({"terminator_server_key"}),
}
PROCESSES: tuple[str, ...] = tuple(PROCESS_KEYS)
# Processes that hold no database credential at all: beat only talks to the broker.
PROCESSES_WITHOUT_DATABASE = frozenset({"beat"})
# The processes gunicorn serves: in production each listens on a Unix socket only, WEB_UNIX_SOCKET, behind nginx
# (fintech/gunicorn.conf.py; fintech.checks.process_bind_check refuses a TCP listener).
PROCESSES_ON_A_UNIX_SOCKET = ("web", "vault")
SOCKET_VARIABLE = "WEB_UNIX_SOCKET"
# The settings module of each role in production.
PROCESS_SETTINGS_MODULE = {
    "web": "fintech.settings.production",
    "worker": "fintech.settings.production",
    "certworker": "fintech.settings.production",
    "beat": "fintech.settings.production",
    "vault": "fintech.settings.vault",
    "ops": "fintech.settings.production",
    "terminator": "fintech.settings.production",
}
# What the production settings of each role require besides its keys: connections and names, no key. The
# worker is deployed as the audit sealer (AUDIT_SEALER_PROCESS=1, its own login and checkpoint export).
PROCESS_REQUIRED_VARIABLES: dict[str, tuple[str, ...]] = {
    "web": ("DJANGO_ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "OAUTH_ISSUER_URL", "VAULT_URL"),
    "worker": (
        "DJANGO_ALLOWED_HOSTS",
        "DATABASE_URL",
        "REDIS_URL",
        "OAUTH_ISSUER_URL",
        "VAULT_URL",
        "AUDIT_SEALER_PROCESS",
        "AUDIT_SEALER_DATABASE_URL",
        "AUDIT_CHECKPOINT_EXPORT_DIR",
    ),
    "certworker": ("DJANGO_ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "OAUTH_ISSUER_URL"),
    "beat": ("DJANGO_ALLOWED_HOSTS", "REDIS_URL", "OAUTH_ISSUER_URL"),
    "vault": (
        "DJANGO_ALLOWED_HOSTS",
        "VAULT_DATABASE_URL",
        "VAULT_AUDIT_DATABASE_URL",
        "VAULT_REDIS_URL",
        "FINTECH_ENV",
    ),
    "ops": ("DJANGO_ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "OAUTH_ISSUER_URL"),
    # Its two listeners and the two sockets behind them; the database (read only: Certificate and CRL rows).
    "terminator": (
        "DJANGO_ALLOWED_HOSTS",
        "DATABASE_URL",
        "OAUTH_ISSUER_URL",
        "PKI_TERMINATOR_VAULT_LISTEN",
        "PKI_TERMINATOR_PARTNER_LISTEN",
        "PKI_TERMINATOR_VAULT_UPSTREAM",
        "PKI_TERMINATOR_WEB_SOCKET",
    ),
}


def process_allows(process: str, key: str) -> bool:
    """Whether a process of this role may hold `key`; "" (a dev console or the test runner) holds every key."""
    if key not in KEYS:
        raise KeyError(f"unknown key {key!r} (fintech/process_keys.py)")
    if not process:
        return True
    return key in PROCESS_KEYS[process]


def key_holders(key: str) -> list[str]:
    return [process for process, keys in PROCESS_KEYS.items() if key in keys]


def variable_keys() -> dict[str, str]:
    """{environment variable: key} for every variable that carries a key."""
    return {variable: name for name, key in KEYS.items() for variable in key.variables}


def _setting_value(settings: Any, dotted: str) -> Any:
    name, _, item = dotted.partition(".")
    try:
        value = getattr(settings, name, None)
    except ImproperlyConfigured:  # Django refuses to return an empty SECRET_KEY: not held
        return None
    if item:
        return value.get(item) if isinstance(value, Mapping) else None
    return value


def keys_held(settings: Any) -> dict[str, list[str]]:
    """{key: the settings that hold it} for every key these settings hold (a setting is truthy)."""
    held: dict[str, list[str]] = {}
    for name, key in KEYS.items():
        holding = [setting for setting in key.settings if _setting_value(settings, setting)]
        if holding:
            held[name] = holding
    return held


def keys_in_environment(environ: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """{key: the variables that carry it} for every key variable set (non-empty) in the environment."""
    environ = os.environ if environ is None else environ
    present: dict[str, list[str]] = {}
    for variable, name in variable_keys().items():
        if environ.get(variable, "").strip():
            present.setdefault(name, []).append(variable)
    return present
