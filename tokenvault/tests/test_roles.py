"""The two deployment roles' settings (ADR 0012), each imported in a fresh process with throw-away production values."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

from fintech.tests.test_settings import PRODUCTION_ENV, ROOT, throwaway_rsa_key_file

VAULT_DATABASE_SENTINEL = "postgres://vault-sentinel-user:sentinel-password@vault-db.invalid:5432/fintech_vault"
_REPORT = """
import json, django
django.setup()
from django.conf import settings
from django.core.management import call_command
names = [n for n in dir(settings) if n.isupper()]
print(json.dumps({
    "aliases": sorted(settings.DATABASES),
    "runtime_roles": sorted(settings.DATABASE_RUNTIME_ROLES),
    "has_kek_dir": bool(getattr(settings, "VAULT_KEK_DIR", None)),
    "mentions_vault_database": [n for n in names if "vault-sentinel" in repr(getattr(settings, n))],
    "root_urlconf": settings.ROOT_URLCONF,
    "service_role": settings.SERVICE_ROLE,
    "apps": settings.INSTALLED_APPS,
}))
"""


def _run(
    env_overrides: dict[str, str], *, drop: tuple[str, ...] = (), script: str = _REPORT
) -> subprocess.CompletedProcess:
    """Runs `script` in a fresh process under production values, `env_overrides` applied and `drop` removed."""
    env = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV and k not in drop}
    env.update(PRODUCTION_ENV)
    env["OIDC_SIGNING_KEY_PATH"] = throwaway_rsa_key_file()
    env["FINTECH_VAR_DIR"] = "/nonexistent-var-dir"  # production must not lean on var/services.env
    env["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(64)
    env.update(env_overrides)
    for name in drop:
        env.pop(name, None)
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def _vault_role(**overrides: str) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "fintech.settings.vault",
        "FINTECH_PROCESS": "vault",
        "FINTECH_ENV": "production",
        "DJANGO_ALLOWED_HOSTS": "vault.internal.example",
        "VAULT_DATABASE_URL": VAULT_DATABASE_SENTINEL,
        "VAULT_AUDIT_DATABASE_URL": "postgres://fintech_vault_audit@main-db.invalid:5432/fintech",
        "VAULT_REDIS_URL": "redis://fintech_vault:x@redis.invalid:6379/0",
        "VAULT_KEK_DIR": "/run/secrets/vault-kek",
        "VAULT_SERVICE_TOKEN": secrets.token_urlsafe(48),
        "STAFF_GRANT_VERIFY_KEY_PATH": "/run/secrets/staff-grant-ed25519.pub.pem",
        **overrides,
    }


def test_the_production_api_role_holds_no_vault_database_and_needs_no_vault_keys():
    # The vault's URL is in the environment (a careless deployment), its key directory is not.
    result = _run({"VAULT_DATABASE_URL": VAULT_DATABASE_SENTINEL}, drop=("VAULT_KEK_DIR",))

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["aliases"] == ["default"]
    assert report["runtime_roles"] == ["default"]
    assert report["has_kek_dir"] is False
    assert report["mentions_vault_database"] == []
    assert (report["service_role"], report["root_urlconf"]) == ("api", "fintech.urls")


def test_the_production_api_role_refuses_a_plain_http_vault_url():
    result = _run({"VAULT_URL": "http://vault.internal.example"})

    assert result.returncode != 0
    assert "VAULT_URL must be an https:// URL" in result.stderr


def test_the_production_api_role_refuses_a_weak_service_credential():
    result = _run({"VAULT_SERVICE_TOKEN": "short"})

    assert result.returncode != 0
    assert "VAULT_SERVICE_TOKEN must be a random value" in result.stderr


def test_the_vault_role_holds_both_databases_and_serves_only_the_internal_api():
    # None of the API role's secrets: no OIDC key, webhook key or field keys.
    result = _run(_vault_role(), drop=("OIDC_SIGNING_KEY_PATH", "WEBHOOK_SIGNING_KEY", "FIELD_KEK_DIR", "VAULT_URL"))

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["aliases"] == ["default", "vault"]
    assert report["has_kek_dir"] is True
    assert (report["service_role"], report["root_urlconf"]) == ("vault", "tokenvault.internal_urls")
    assert "accounts.admin_site.FintechAdminConfig" not in report["apps"]
    assert "django.contrib.sessions" not in report["apps"]


def test_the_vault_role_defaults_to_production_and_refuses_to_start_without_its_secrets():
    result = _run(_vault_role(), drop=("FINTECH_ENV", "VAULT_SERVICE_TOKEN"))

    assert result.returncode != 0
    assert "VAULT_SERVICE_TOKEN" in result.stderr


def test_the_vault_role_refuses_to_start_without_its_database_url():
    result = _run(_vault_role(), drop=("VAULT_DATABASE_URL",))

    assert result.returncode != 0
    assert "VAULT_DATABASE_URL" in result.stderr
