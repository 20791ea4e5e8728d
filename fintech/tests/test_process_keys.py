"""Each process holds only its keys (issue 12 item 6): the rule in fintech/process_keys.py, and its deploy check.

Every role's production settings pass `check --deploy` with only its own keys;
its dev settings hold (and generate) the same subset; a key another process
needs, in the settings or in the environment, fails the check.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from fintech.checks import process_keys_check
from fintech.process_keys import (
    KEYS,
    PROCESS_KEYS,
    PROCESS_REQUIRED_VARIABLES,
    PROCESS_SETTINGS_MODULE,
    PROCESSES,
    key_holders,
    keys_held,
    variable_keys,
)

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("deploy_checks", ROOT / "scripts" / "deploy_checks.py")
deploy_checks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(deploy_checks)

_REPORT = """
import json, django
django.setup()
from django.conf import settings
from django.core.management import call_command
from fintech.process_keys import keys_held
if {deploy_check}:
    call_command("check", deploy=True, fail_level="WARNING")
print(json.dumps({{"process": settings.FINTECH_PROCESS, "held": sorted(keys_held(settings)),
                  "databases": sorted(a for a, c in settings.DATABASES.items() if "dummy" not in c["ENGINE"])}}))
"""


def _run(environment: dict[str, str], *, deploy_check: bool) -> subprocess.CompletedProcess:
    script = _REPORT.format(deploy_check=deploy_check)
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


def _production(process: str, tmp_path: Path, **extra: str) -> subprocess.CompletedProcess:
    return _run({**deploy_checks.process_environment(process, tmp_path), **extra}, deploy_check=True)


# --- the rule itself --------------------------------------------------------------------------------


def test_the_rule_names_every_process_and_only_known_keys():
    assert set(PROCESS_KEYS) == set(PROCESS_SETTINGS_MODULE) == set(PROCESS_REQUIRED_VARIABLES)
    assert set(PROCESSES) == {"web", "worker", "certworker", "beat", "vault", "ops", "terminator"}
    for keys in PROCESS_KEYS.values():
        assert keys <= set(KEYS)
    # The threat of issue 12 item 6, spelled out.
    assert {process for process, keys in PROCESS_KEYS.items() if "audit_signing_key" in keys} == {"worker"}
    # ADR 0018: the issuing key sits in a process of its own, which holds no other private key or secret value.
    assert {process for process, keys in PROCESS_KEYS.items() if "pki_issuing_key" in keys} == {"certworker"}
    assert PROCESS_KEYS["certworker"] == {"pki_issuing_key", "staff_grant_verify_key"}
    # The vault client certificate goes where the vault's service credential goes, but never to the vault itself.
    assert set(key_holders("vault_client_certificate")) == set(key_holders("vault_service_token")) - {"vault"}
    assert not PROCESS_KEYS["vault"] & {"oidc_signing_key", "webhook_signing_key", "field_kek"}
    assert PROCESS_KEYS["beat"] == frozenset()
    # The TLS terminator holds its server key and nothing else: not the staff grant key of ops, which it ran as.
    assert PROCESS_KEYS["terminator"] == {"terminator_server_key"}
    assert key_holders("terminator_server_key") == ["terminator"]
    assert len(variable_keys()) == sum(len(key.variables) for key in KEYS.values())  # no variable is two keys


def test_the_check_sees_every_key_in_real_settings():
    """The console (FINTECH_PROCESS unset) holds every key: each setting the rule names is real and detected."""
    assert django_settings.FINTECH_PROCESS == ""
    held = keys_held(django_settings)

    # Empty unless configured; the test settings have no client certificate for the vault (no terminator in front).
    assert set(KEYS) - set(held) <= {"metrics_token", "vault_service_token_previous", "vault_client_certificate"}


# --- the deploy check, in this process --------------------------------------------------------------


@pytest.fixture
def process_settings(monkeypatch):
    """Make the running settings those of `process` (what the rule allows it, nothing else), for the check only.

    Through `django.conf.settings` itself (it caches what was read), undone after the test.
    """
    wrapped = django_settings._wrapped

    def become(process: str) -> None:
        for variable in variable_keys():
            monkeypatch.delenv(variable, raising=False)
        monkeypatch.setattr(django_settings, "FINTECH_PROCESS", process)
        oauth = dict(wrapped.OAUTH2_PROVIDER)
        for name, key in KEYS.items():
            if name in PROCESS_KEYS[process]:
                continue
            for setting in key.settings:
                attribute, _, item = setting.partition(".")
                if item:
                    oauth[item] = type(oauth.get(item, ""))()
                elif hasattr(wrapped, attribute):
                    value = getattr(wrapped, attribute)
                    monkeypatch.setattr(django_settings, attribute, type(value)() if value is not None else None)
        monkeypatch.setattr(django_settings, "OAUTH2_PROVIDER", oauth)
        if process == "beat":
            monkeypatch.setattr(django_settings, "DATABASES", {})

    return become


def _ids(errors) -> list[str]:
    return sorted(error.id for error in errors)


@pytest.mark.parametrize("process", PROCESSES)
def test_each_process_holding_only_its_keys_passes(process_settings, process):
    process_settings(process)

    assert process_keys_check(None) == []


@pytest.mark.parametrize(
    ("process", "injection", "key"),
    [
        ("vault", ("OAUTH2_PROVIDER.OIDC_RSA_PRIVATE_KEY", "-----BEGIN PRIVATE KEY-----"), "oidc_signing_key"),
        ("vault", ("WEBHOOK_SIGNING_KEY", "w" * 64), "webhook_signing_key"),
        ("vault", ("FIELD_KEK_GENERATE", True), "field_kek"),
        ("web", ("AUDIT_SIGNING_KEY_PATH", "/run/credentials/audit-signing-key.pem"), "audit_signing_key"),
        ("web", ("STAFF_GRANT_SIGNING_KEY_PATH", "/run/credentials/staff-grant.pem"), "staff_grant_signing_key"),
        ("web", ("WEBHOOK_SIGNING_KEY", "w" * 64), "webhook_signing_key"),
        ("worker", ("OIDC_SIGNING_KEY_PATH", "/run/credentials/oidc.pem"), "oidc_signing_key"),
        ("worker", ("FIELD_KEK_DIR", "/var/lib/fintech-web/field-kek"), "field_kek"),
        ("beat", ("SECRET_KEY", "s" * 64), "django_secret_key"),
        ("ops", ("VAULT_KEK_DIR", "/var/lib/fintech-vault/vault-kek"), "vault_kek"),
    ],
)
def test_settings_holding_a_key_the_process_does_not_need_fail(process_settings, monkeypatch, process, injection, key):
    process_settings(process)
    setting, value = injection
    attribute, _, item = setting.partition(".")
    if item:
        monkeypatch.setattr(django_settings, attribute, {**getattr(django_settings, attribute), item: value})
    elif hasattr(django_settings._wrapped, attribute):  # blanked by process_settings, which restores it
        setattr(django_settings, attribute, value)
    else:
        monkeypatch.setattr(django_settings, attribute, value, raising=False)

    errors = process_keys_check(None)

    assert _ids(errors) == ["fintech.E003"]
    assert key in errors[0].msg and process in errors[0].msg


def test_an_environment_carrying_a_key_the_process_does_not_need_fails(process_settings, monkeypatch):
    process_settings("vault")
    monkeypatch.setenv("WEBHOOK_SIGNING_KEY", "w" * 64)
    monkeypatch.setenv("OIDC_SIGNING_KEY_PATH", "/run/credentials/oidc.pem")

    errors = process_keys_check(None)

    assert _ids(errors) == ["fintech.E004", "fintech.E004"]
    assert "WEBHOOK_SIGNING_KEY" in " ".join(error.msg for error in errors)


def test_a_process_without_a_name_or_beat_with_a_database_fails(process_settings, monkeypatch):
    process_settings("beat")
    monkeypatch.setattr(django_settings, "DATABASES", {"default": {"ENGINE": "django.db.backends.postgresql"}})
    assert _ids(process_keys_check(None)) == ["fintech.E005"]

    monkeypatch.setattr(django_settings, "FINTECH_PROCESS", "")
    assert _ids(process_keys_check(None)) == ["fintech.E002"]


# --- real settings, each in a fresh process ------------------------------------------------------------


@pytest.fixture(scope="module")
def production_reports(tmp_path_factory):
    reports = {}
    for process in PROCESSES:
        result = _production(process, tmp_path_factory.mktemp(process))
        assert result.returncode == 0, f"{process}: {result.stderr[-3000:]}"
        reports[process] = json.loads(result.stdout.strip().splitlines()[-1])
    return reports


@pytest.mark.parametrize("process", PROCESSES)
def test_each_production_process_passes_check_deploy_with_only_its_keys(production_reports, process):
    report = production_reports[process]

    assert report["process"] == process
    optional = {name for name, key in KEYS.items() if not key.required}
    assert set(report["held"]) == PROCESS_KEYS[process] - optional
    assert (report["databases"] == []) is (process == "beat")


@pytest.mark.parametrize(
    ("process", "variable", "value"),
    [
        ("vault", "WEBHOOK_SIGNING_KEY", "w" * 64),
        ("vault", "OIDC_SIGNING_KEY_PATH", "/run/credentials/oidc.pem"),
        ("web", "AUDIT_SIGNING_KEY_PATH", "/run/credentials/audit-signing-key.pem"),
        ("beat", "DJANGO_SECRET_KEY", "s" * 64),
    ],
)
def test_a_production_process_given_another_process_key_fails_check_deploy(tmp_path, process, variable, value):
    result = _production(process, tmp_path, **{variable: value})

    assert result.returncode != 0
    assert "fintech.E004" in result.stderr and variable in result.stderr


def test_only_the_worker_may_be_the_audit_sealer(tmp_path):
    result = _production("web", tmp_path, AUDIT_SEALER_PROCESS="1")

    assert result.returncode != 0
    assert "AUDIT_SEALER_PROCESS=1 in the web process" in result.stderr


@pytest.mark.parametrize(
    ("process", "variable"), [("web", "VAULT_CLIENT_KEY_PATH"), ("worker", "VAULT_CLIENT_CERT_PATH")]
)
def test_production_refuses_a_vault_caller_without_its_client_certificate(tmp_path, process, variable):
    result = _production(process, tmp_path, **{variable: ""})

    assert result.returncode != 0
    assert f"VAULT_CLIENT_CERT_PATH and VAULT_CLIENT_KEY_PATH are required in the {process} process" in result.stderr


def test_production_refuses_a_process_without_a_role(tmp_path):
    result = _production("web", tmp_path, FINTECH_PROCESS="")

    assert result.returncode != 0
    assert "FINTECH_PROCESS is required in production" in result.stderr


# What each key's dev generation writes into var/keys/ (dev_secret, dev_rsa_private_key_pem, dev_ed25519_key_pair).
DEV_KEY_FILES = {
    "django_secret_key": {"django_secret_key"},
    "oidc_signing_key": {"oidc-rsa.pem"},
    "webhook_signing_key": {"webhook_signing_key"},
    "vault_service_token": {"vault_service_token"},
    "audit_signing_key": {"audit-signing-ed25519.pem", "audit-signing-ed25519.pub.pem"},
    "staff_grant_signing_key": {"staff-grant-ed25519.pem", "staff-grant-ed25519.pub.pem"},
}


@pytest.mark.parametrize("process", PROCESSES)
def test_dev_settings_load_and_generate_the_same_keys_as_production(production_reports, tmp_path, process):
    """`make run`'s processes (Procfile) hold exactly their production subset, and generate only their own keys."""
    procfile = {line.split(":", 1)[0]: line for line in (ROOT / "Procfile").read_text().splitlines() if ":" in line}
    environment = {
        "PATH": "/usr/bin:/bin",
        "FINTECH_VAR_DIR": str(tmp_path / "var"),
        "FINTECH_PROCESS": process,
        "DJANGO_SETTINGS_MODULE": "fintech.settings.vault" if process == "vault" else "fintech.settings.dev",
        "FINTECH_ENV": "dev",
    }
    if process == "worker":  # as the Procfile starts it: the audit sealer
        assert "AUDIT_SEALER_PROCESS=1" in procfile["worker"]
        environment["AUDIT_SEALER_PROCESS"] = "1"

    result = _run(environment, deploy_check=False)

    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["process"] == process
    assert report["held"] == production_reports[process]["held"]
    generated = {path.name for path in (tmp_path / "var" / "keys").glob("*")} if (tmp_path / "var").exists() else set()
    expected = set().union(*(DEV_KEY_FILES.get(key, set()) for key in PROCESS_KEYS[process]))
    if process == "vault":  # a Django key of its own, as in production
        expected = expected - {"django_secret_key"} | {"vault_django_secret_key"}
    assert generated == expected


def test_every_procfile_process_names_its_role():
    lines = [line for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()]

    named = {line.split(":", 1)[0]: re.findall(r"\bFINTECH_PROCESS=(\w+)", line) for line in lines}

    assert all(len(roles) == 1 and roles[0] in PROCESSES for roles in named.values()), named
    services = {"web", "vault", "worker", "certworker", "beat", "terminator"}
    assert {name: named.get(name) for name in services} == {name: [name] for name in services}


def test_the_terminator_defaults_to_the_dev_certificates_in_dev(tmp_path):
    """`make run`'s terminator (Procfile) serves what tls_dev_certificates writes (pki/dev_certificates.py)."""
    from pki.dev_certificates import VAULT_SERVER

    environment = {
        "PATH": "/usr/bin:/bin",
        "FINTECH_VAR_DIR": str(tmp_path / "var"),
        "FINTECH_PROCESS": "terminator",
        "DJANGO_SETTINGS_MODULE": "fintech.settings.dev",
        "VAULT_TLS_PORT": "8443",
        "API_MTLS_PORT": "8444",
        "VAULT_PORT": "8001",
    }
    script = (
        "import json, django; django.setup(); from django.conf import settings as s; print(json.dumps([s.PKI_TLS_DIR, "
        "s.PKI_TERMINATOR_CERT_PATH, s.PKI_TERMINATOR_KEY_PATH, s.PKI_TERMINATOR_VAULT_LISTEN, "
        "s.PKI_TERMINATOR_PARTNER_LISTEN, s.PKI_TERMINATOR_VAULT_UPSTREAM, s.PKI_TERMINATOR_WEB_SOCKET]))"
    )

    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr[-3000:]
    tls, cert, key, vault_listen, partner_listen, upstream, web_socket = json.loads(result.stdout.splitlines()[-1])
    assert (cert, key) == (str(VAULT_SERVER.certificate_path(Path(tls))), str(VAULT_SERVER.key_path(Path(tls))))
    assert (vault_listen, partner_listen) == ("127.0.0.1:8443", "127.0.0.1:8444")
    assert upstream == "http://127.0.0.1:8001"
    assert web_socket == str((tmp_path / "var" / "run" / "web.sock").resolve())


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PKI_TERMINATOR_VAULT_UPSTREAM", "http://127.0.0.1:8001", "must be the vault's Unix socket"),
        ("PKI_TERMINATOR_PARTNER_LISTEN", "[::]:8444", "PKI_TERMINATOR_PARTNER_LISTEN must be"),
        ("PKI_TERMINATOR_KEY_PATH", "", "PKI_TERMINATOR_KEY_PATH"),
    ],
)
def test_production_refuses_a_terminator_without_its_sockets_listeners_or_key(tmp_path, variable, value, message):
    result = _production("terminator", tmp_path, **{variable: value})

    assert result.returncode != 0
    assert message in result.stderr


def test_tls_terminator_refuses_a_process_without_the_terminator_key(tmp_path):
    """ops (the staff grant signing key) no longer runs the terminator: the command refuses before starting nginx."""
    environment = deploy_checks.process_environment("ops", tmp_path)
    script = "import django; django.setup(); from django.core import management as m; m.call_command('tls_terminator')"

    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )

    assert result.returncode != 0
    assert "terminator_key_not_held" in result.stderr
