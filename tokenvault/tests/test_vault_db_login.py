"""The vault database has a login of its own; the API's login cannot open it (ADR 0012, issue 6).

PCI segmentation: `fintech_app`, the API role's credential, must not be able to
connect to the vault database even though it holds only ciphertext, and the
vault's login must not open the main database. PostgreSQL checks CONNECT at
login, so these tests log in as each role to the test databases, which got the
same post_migrate treatment (fintech/db_privileges.py) as deployed ones.
"""

from __future__ import annotations

import psycopg
import pytest
from django.conf import settings

from conftest import database_url, vault_audit_database_url, vault_database_url
from tokenvault.tests.test_roles import VAULT_DATABASE_SENTINEL
from tokenvault.tests.test_vault_db_role import AUDIT_SENTINEL, _report, _vault_role

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "vault"])


def api_role() -> str:
    return settings.DATABASE_RUNTIME_ROLES["default"]


def vault_role() -> str:
    return settings.DATABASE_RUNTIME_ROLES["vault"]


def assert_connect_refused(url: str) -> None:
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(url, connect_timeout=5).close()


def test_the_vault_database_login_is_not_the_apis():
    assert vault_role() != api_role()
    assert vault_role() != settings.VAULT_AUDIT_DATABASE_ROLE


def test_the_api_login_cannot_connect_to_the_vault_database():
    assert_connect_refused(database_url("vault", role=api_role()))


def test_the_vault_login_cannot_connect_to_the_main_database():
    assert_connect_refused(database_url("default", role=vault_role()))


def test_each_login_still_opens_its_own_database():
    # The refusals above are not an outage: the same server lets each role into its database.
    with psycopg.connect(vault_database_url()) as connection:
        assert connection.execute("SELECT current_user").fetchone()[0] == vault_role()
        connection.execute("SELECT count(*) FROM tokenvault_vaultrecord")
    with psycopg.connect(database_url("default", role=api_role())) as connection:
        connection.execute("SELECT count(*) FROM accounts_user")
    with psycopg.connect(vault_audit_database_url()) as connection:
        assert connection.execute("SELECT current_user").fetchone()[0] == settings.VAULT_AUDIT_DATABASE_ROLE


def test_public_holds_connect_on_neither_database():
    for alias in ("default", "vault"):
        with psycopg.connect(database_url(alias)) as connection:
            (acl,) = connection.execute(
                "SELECT datacl::text[] FROM pg_database WHERE datname = current_database()"
            ).fetchone()
        public = [entry for entry in acl or [] if entry.startswith("=")]
        assert public and all("c" not in entry.split("/")[0] for entry in public), (alias, acl)


def test_a_production_vault_role_sharing_one_login_for_both_databases_fails_its_deploy_check():
    shared = VAULT_DATABASE_SENTINEL.replace("vault-sentinel-user", "fintech_vault_audit")
    report = _report(_vault_role(VAULT_DATABASE_URL=shared, VAULT_AUDIT_DATABASE_URL=AUDIT_SENTINEL))

    assert report["checks"] == ["tokenvault.E021"]
