#!/usr/bin/env python3
"""`manage.py check --deploy` under the production settings of every process, with throw-away values.

Each process gets exactly what a deployment gives it (fintech/process_keys.py):
the variables of its own keys and the connections its settings require, in an
environment of its own (no var/services.env, nothing inherited but PATH). A
key another process needs, left in its environment or loaded by its settings,
fails the check (fintech.E003/E004). `scripts/quality_gates.sh` runs it;
fintech/tests/test_process_keys.py builds its environments with the same
`process_environment`.

    .venv/bin/python scripts/deploy_checks.py [PROCESS ...]   # default: every process
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fintech.process_keys import (  # noqa: E402
    KEYS,
    PROCESS_KEYS,
    PROCESS_REQUIRED_VARIABLES,
    PROCESS_SETTINGS_MODULE,
    PROCESS_VARIABLE,
    PROCESSES_ON_A_UNIX_SOCKET,
    SOCKET_VARIABLE,
)

# Stand-ins for what each process's production settings require besides keys (no host here resolves).
THROWAWAY_VALUES = {
    "DJANGO_ALLOWED_HOSTS": "api.fintech.example",
    "DATABASE_URL": "postgres://fintech_app@db.invalid:5432/fintech",
    "REDIS_URL": "redis://redis.invalid:6379/0",
    "VAULT_REDIS_URL": "redis://fintech_vault:x@redis.invalid:6379/0",
    "OAUTH_ISSUER_URL": "https://api.fintech.example",
    "VAULT_URL": "https://vault.internal.example",
    "VAULT_DATABASE_URL": "postgres://fintech_vault_app@vault-db.invalid:5432/fintech_vault",
    "VAULT_AUDIT_DATABASE_URL": "postgres://fintech_vault_audit@db.invalid:5432/fintech",
    "FINTECH_ENV": "production",
    "AUDIT_SEALER_PROCESS": "1",
    "AUDIT_SEALER_DATABASE_URL": "postgres://fintech_sealer@db.invalid:5432/fintech",
    "AUDIT_CHECKPOINT_EXPORT_DIR": "/var/lib/fintech-worker/audit-checkpoints",
    "PKI_TERMINATOR_VAULT_LISTEN": "127.0.0.1:8443",
    "PKI_TERMINATOR_PARTNER_LISTEN": "0.0.0.0:8444",  # nosec B104 - a stand-in, never bound here
    "PKI_TERMINATOR_VAULT_UPSTREAM": "http://unix:/run/fintech-vault/vault.sock:",
    "PKI_TERMINATOR_WEB_SOCKET": "/run/fintech-web/web.sock",
}


def throwaway_rsa_key_file(directory: Path) -> str:
    """A fresh RSA key (PEM): production reads the OIDC key when its settings load."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = directory / "oidc-signing-key.pem"
    if not path.exists():
        path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return str(path)


def key_stand_in(process: str, variable: str, key: str, directory: Path) -> str:
    form = KEYS[key].form
    if key == "oidc_signing_key":
        return throwaway_rsa_key_file(directory)
    if form == "value":
        return secrets.token_urlsafe(64)
    if form == "directory":
        return f"/var/lib/fintech-{process}/{key.replace('_', '-')}"
    return f"/run/credentials/fintech-{process}.service/{variable.lower().replace('_', '-')}.pem"


def socket_stand_in(process: str, directory: Path) -> str:
    """A socket path in a directory shaped like the unit's RuntimeDirectory (0750): the bind check stats it."""
    runtime = directory / "run" / f"fintech-{process}"
    runtime.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o750)
    return str(runtime / f"{process}.sock")


def process_environment(process: str, directory: Path) -> dict[str, str]:
    """The whole environment of one production process: its keys' variables and its required connections."""
    environment = {
        "PATH": os.defpath,
        "DJANGO_SETTINGS_MODULE": PROCESS_SETTINGS_MODULE[process],
        PROCESS_VARIABLE: process,
        # An empty var dir: production must not lean on var/services.env, and nothing is generated.
        "FINTECH_VAR_DIR": str(directory / "var"),
    }
    for name in PROCESS_REQUIRED_VARIABLES[process]:
        environment[name] = THROWAWAY_VALUES[name]
    if process in PROCESSES_ON_A_UNIX_SOCKET:
        environment[SOCKET_VARIABLE] = socket_stand_in(process, directory)
    for key in sorted(PROCESS_KEYS[process]):
        if KEYS[key].required:
            for variable in KEYS[key].variables[: KEYS[key].required_variables]:
                environment[variable] = key_stand_in(process, variable, key, directory)
    return environment


def deploy_check(process: str, *, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix=f"fintech-deploy-check-{process}-") as directory:
        environment = {**process_environment(process, Path(directory)), **(extra or {})}
        return subprocess.run(
            [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def main(processes: list[str]) -> int:
    failed = []
    for process in processes or list(PROCESS_KEYS):
        if process not in PROCESS_KEYS:
            print(f"unknown process {process!r}: one of {', '.join(PROCESS_KEYS)}", file=sys.stderr)
            return 2
        result = deploy_check(process)
        print(f"-- {process} ({PROCESS_SETTINGS_MODULE[process]}): {(result.stdout + result.stderr).strip()}")
        if result.returncode != 0:
            failed.append(process)
    if failed:
        print(f"!! check --deploy failed for: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
