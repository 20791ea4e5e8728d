"""Configuration invariants: production refuses unsafe config, every variable is documented."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The web process's production environment (its keys only: fintech/process_keys.py), minus DJANGO_SECRET_KEY.
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "fintech.settings.production",
    "FINTECH_PROCESS": "web",
    "DJANGO_ALLOWED_HOSTS": "api.fintech.example",
    "DATABASE_URL": "postgres://app@db.invalid:5432/fintech",
    "REDIS_URL": "redis://redis.invalid:6379/0",
    "AUDIT_VERIFY_KEY_PATHS": "/run/secrets/audit-signing-ed25519.pub.pem",
    "OAUTH_ISSUER_URL": "https://api.fintech.example",
    "VAULT_URL": "https://vault.internal.example",
    "VAULT_SERVICE_TOKEN": "s" * 30 + "0123456789abcdefghijklmnopqrst",
    "FIELD_KEK_DIR": "/run/secrets/field-kek",
    "VAULT_CLIENT_CERT_PATH": "/run/secrets/vault-client.pem",
    "VAULT_CLIENT_KEY_PATH": "/run/secrets/vault-client.key.pem",
}


def throwaway_rsa_key_file() -> str:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    handle = tempfile.NamedTemporaryFile("wb", suffix=".pem", delete=False)  # noqa: SIM115
    handle.write(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    handle.close()
    return handle.name


def load_production_settings(**overrides: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV and k != "DJANGO_SECRET_KEY"}
    env.update(PRODUCTION_ENV)
    env["OIDC_SIGNING_KEY_PATH"] = throwaway_rsa_key_file()
    env["FINTECH_VAR_DIR"] = "/nonexistent-var-dir"  # production must not lean on var/services.env
    env.update(overrides)
    code = "import django; django.setup(); from django.conf import settings; print(settings.SECURE_HSTS_SECONDS)"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_production_refuses_to_start_without_a_secret_key():
    result = load_production_settings()

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_production_refuses_a_weak_secret_key():
    result = load_production_settings(DJANGO_SECRET_KEY="short")

    assert result.returncode != 0
    assert "at least 50 characters" in result.stderr


def test_production_starts_with_real_values_and_sends_hsts_for_a_year():
    result = load_production_settings(DJANGO_SECRET_KEY=secrets.token_urlsafe(64))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "31536000"


def _variables_read_by_code() -> set[str]:
    pattern = re.compile(
        r"""(?:env\.\w+\(|os\.environ\.get\(|os\.environ\[|os\.environ\.setdefault\(|dotenv_value\()\s*["']([A-Z][A-Z0-9_]+)["']"""
    )
    names: set[str] = set()
    for folder in ("fintech", "accounts", "ledger", "tokenvault", "audit", "pki", "scripts"):
        for path in (ROOT / folder).rglob("*.py"):
            if "tests" in path.parts:
                continue
            names.update(pattern.findall(path.read_text()))
    return names


def test_every_environment_variable_is_listed_in_env_example():
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))

    read = _variables_read_by_code()

    assert "DATABASE_URL" in read  # the scan itself works
    assert read - documented == set()


@pytest.mark.django_db
def test_the_router_keeps_vault_apps_in_the_vault_database():
    from django.db import router

    from accounts.models import User

    assert router.db_for_write(User) == "default"
    assert router.allow_migrate("vault", "accounts") is False
    assert router.allow_migrate("vault", "tokenvault") is True
    assert router.allow_migrate("default", "tokenvault") is False
