"""The one place that reads the process environment.

Precedence: real environment variables, then `.env` at the repository root
(the operator's own overrides), then `var/services.env` (written by
`scripts/services.sh` with the PostgreSQL/Redis endpoints it found or started).
Every variable is listed with a safe default in `.env.example`.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("FINTECH_VAR_DIR", BASE_DIR / "var"))

env = environ.Env()


def _load_env_file(path: Path) -> None:
    """KEY=VALUE lines; the first source that sets a variable wins; empty means unset."""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip().strip("'\"")
        if value and not os.environ.get(key.strip()):
            os.environ[key.strip()] = value


for env_file in (BASE_DIR / ".env", VAR_DIR / "services.env"):
    if env_file.is_file():
        _load_env_file(env_file)


def dev_secret(name: str, *, nbytes: int = 48) -> str:
    """A random secret generated on first use into var/keys/, never committed.

    Only dev and test settings call this; production reads every secret from
    the environment and refuses to start without it.
    """
    keys_dir = VAR_DIR / "keys"
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = keys_dir / name
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(nbytes))
    return path.read_text().strip()


def dev_rsa_private_key_pem(path: Path) -> str:
    """An RSA key (PEM) generated on first use at `path`; dev and test only."""
    if not path.exists():
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text()
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
    return path.read_text()
