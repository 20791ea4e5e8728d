"""Only the sealer process points at the audit signing key and holds the sealer's login (issue 12, item 3).

Production settings of the web and of the worker (AUDIT_SEALER_PROCESS=1),
each imported in a fresh process with throw-away values, as
tokenvault/tests/test_roles.py does for the vault. The web is handed the
sealer's variables too (a careless shared environment file) and holds none of them.
"""

from __future__ import annotations

import json
import secrets

from tokenvault.tests.test_roles import _run

SIGNING_KEY = "/run/secrets/audit-signing-sentinel.pem"
SEALER_URL = "postgres://fintech_sealer:sealer-sentinel-password@db.invalid:5432/fintech"
SEALER_VARIABLES = {
    "AUDIT_SIGNING_KEY_PATH": SIGNING_KEY,
    "AUDIT_SEALER_DATABASE_URL": SEALER_URL,
    "AUDIT_CHECKPOINT_EXPORT_DIR": "/srv/audit-checkpoints",
}
_REPORT = """
import json, django
django.setup()
from django.conf import settings
names = [n for n in dir(settings) if n.isupper()]
print(json.dumps({
    "sealer": settings.AUDIT_SEALER_PROCESS,
    "signing_key_path": settings.AUDIT_SIGNING_KEY_PATH,
    "sealer_database": settings.AUDIT_SEALER_DATABASE,
    "sealer_user": settings.DATABASES.get(settings.AUDIT_SEALER_DATABASE, {}).get("USER"),
    "aliases": sorted(settings.DATABASES),
    "export_dir": settings.AUDIT_CHECKPOINT_EXPORT_DIR,
    "mentions": {
        word: [n for n in names if word in repr(getattr(settings, n))]
        for word in ("audit-signing-sentinel", "sealer-sentinel")
    },
}))
"""


def _settings_of(env: dict[str, str]) -> dict:
    result = _run(env, script=_REPORT)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _worker(**overrides: str) -> dict[str, str]:
    return {
        "FINTECH_PROCESS": "worker",
        "AUDIT_SEALER_PROCESS": "1",
        "WEBHOOK_SIGNING_KEY": secrets.token_urlsafe(48),
        **SEALER_VARIABLES,
        **overrides,
    }


def test_the_web_process_holds_neither_the_signing_key_path_nor_the_sealers_login():
    report = _settings_of({"FINTECH_PROCESS": "web", **SEALER_VARIABLES})

    assert report["sealer"] is False
    assert report["signing_key_path"] == ""
    assert (report["aliases"], report["sealer_database"]) == (["default"], "default")
    assert report["mentions"] == {"audit-signing-sentinel": [], "sealer-sentinel": []}


def test_the_worker_is_the_sealer_with_the_key_path_its_own_login_and_the_export():
    report = _settings_of(_worker())

    assert report["sealer"] is True
    assert report["signing_key_path"] == SIGNING_KEY
    assert (report["aliases"], report["sealer_database"]) == (["audit_sealer", "default"], "audit_sealer")
    assert report["sealer_user"] == "fintech_sealer"
    assert report["export_dir"] == "/srv/audit-checkpoints"


def test_the_production_sealer_refuses_to_start_without_its_login_or_its_export_directory():
    for missing in ("AUDIT_SEALER_DATABASE_URL", "AUDIT_CHECKPOINT_EXPORT_DIR", "AUDIT_SIGNING_KEY_PATH"):
        env = _worker()
        env.pop(missing)
        result = _run(env, drop=(missing,), script=_REPORT)

        assert result.returncode != 0, missing
        assert missing in result.stderr, missing


def test_only_a_worker_may_be_the_sealer():
    result = _run({"FINTECH_PROCESS": "web", "AUDIT_SEALER_PROCESS": "1", **SEALER_VARIABLES}, script=_REPORT)

    assert result.returncode != 0
    assert "only the worker seals" in result.stderr
