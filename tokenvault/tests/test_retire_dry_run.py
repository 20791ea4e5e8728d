"""`fields_retire_key --dry-run` and `vault_retire_key --dry-run`: what a retirement would answer, nothing changed.

They ask for no credentials and no grant (stdin is empty here): an operator
can learn that a rewrap is still needed before involving a second person.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from accounts.models import ApprovalRequest
from tokenvault.field_keys import field_key_provider
from tokenvault.tests.conftest import VAULT_DATABASES, VISA, grant_stdin, past_retire_grace

pytestmark = pytest.mark.django_db(databases=VAULT_DATABASES)


def dry_run(command: str, version: str) -> str:
    stdout = io.StringIO()
    call_command(command, version, "--dry-run", stdout=stdout, stderr=io.StringIO(), stdin=io.StringIO())
    return stdout.getvalue()


def test_vault_retire_key_dry_run_reports_refusals_and_success_and_destroys_nothing(provider, actor):
    from tokenvault.services import vault_tokenize

    vault_tokenize(token_type="card", value=VISA, actor=actor)
    with pytest.raises(CommandError, match=r"vault_kek_is_current.*nothing was changed"):
        dry_run("vault_retire_key", "1")
    call_command("vault_rotate_key", stdout=io.StringIO(), stdin=grant_stdin("vault_rotate_key"))
    with pytest.raises(CommandError, match="vault_kek_retire_too_soon"):
        dry_run("vault_retire_key", "1")
    past_retire_grace(provider, 2)
    with pytest.raises(CommandError, match="vault_kek_in_use"):
        dry_run("vault_retire_key", "1")
    call_command("vault_rewrap", stdout=io.StringIO(), stderr=io.StringIO(), stdin=grant_stdin("vault_rewrap"))

    out = dry_run("vault_retire_key", "1")

    assert out.startswith("dry run:") and "can be retired now" in out and "Nothing was changed" in out
    assert provider.versions() == [1, 2]


def test_fields_retire_key_dry_run_checks_without_credentials_or_a_request(tmp_path, settings):
    settings.FIELD_KEK_DIR = str(tmp_path / "field-kek")
    settings.FIELD_KEK_GENERATE = True
    provider = field_key_provider()
    provider.current_kek()  # generates version 1
    with pytest.raises(CommandError, match="vault_kek_is_current"):
        dry_run("fields_retire_key", "1")
    provider.rotate()
    past_retire_grace(provider, 2)

    out = dry_run("fields_retire_key", "1")

    assert out.startswith("dry run:") and "second security admin" in out and "Nothing was changed" in out
    assert not ApprovalRequest.objects.exists()
    assert provider.versions() == [1, 2]


def test_fields_retire_key_without_dry_run_still_needs_a_reason(tmp_path, settings):
    settings.FIELD_KEK_DIR = str(tmp_path / "field-kek")
    settings.FIELD_KEK_GENERATE = True

    with pytest.raises(CommandError, match="--reason is required"):
        call_command("fields_retire_key", "1", stdout=io.StringIO(), stdin=io.StringIO())
