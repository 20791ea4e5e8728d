"""Management commands: rotate, rewrap (batches, progress, resume), retire."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from tokenvault.models import VaultRecord
from tokenvault.services import vault_detokenize, vault_tokenize
from tokenvault.tests.conftest import VAULT_DATABASES, VISA, grant_stdin, past_retire_grace

ALL_TOKEN_TYPES = frozenset(VaultRecord.TokenType.values)

pytestmark = pytest.mark.django_db(databases=VAULT_DATABASES)


def run(*args):
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command(*args, stdout=stdout, stderr=stderr, stdin=grant_stdin(*args))
    return stdout.getvalue(), stderr.getvalue()


def test_rotate_rewrap_with_progress_then_retire(provider, actor):
    tokens = [vault_tokenize(token_type="card", value=VISA, actor=actor).token for _ in range(5)]

    out, _ = run("vault_rotate_key")
    assert out == "KEK version 2 is now current\n"
    with pytest.raises(CommandError, match="vault_kek_retire_too_soon"):
        run("vault_retire_key", "1")
    past_retire_grace(provider, 2)
    with pytest.raises(CommandError, match="vault_kek_in_use"):
        run("vault_retire_key", "1")

    out, err = run("vault_rewrap", "--batch-size", "2")

    ids = list(VaultRecord.objects.using("vault").order_by("id").values_list("id", flat=True))
    assert err.splitlines() == [
        f"rewrapped 2/5 (last id {ids[1]})",
        f"rewrapped 4/5 (last id {ids[3]})",
        f"rewrapped 5/5 (last id {ids[4]})",
    ]
    assert out == f"done: 5 records rewrapped, last id {ids[4]}\n"
    out, _ = run("vault_retire_key", "1")
    assert out == "KEK version 1 retired\n"
    for token in tokens:
        assert (
            vault_detokenize(
                token=token, actor=actor, purpose="customer_request", permitted_token_types=ALL_TOKEN_TYPES
            )
            == VISA
        )


def test_rewrap_resume_from_skips_earlier_records(provider, actor):
    for _ in range(3):
        vault_tokenize(token_type="card", value=VISA, actor=actor)
    ids = list(VaultRecord.objects.using("vault").order_by("id").values_list("id", flat=True))
    run("vault_rotate_key")

    out, _ = run("vault_rewrap", "--resume-from", str(ids[1]))

    assert out == f"done: 1 records rewrapped, last id {ids[2]}\n"
    assert list(VaultRecord.objects.using("vault").order_by("id").values_list("kek_version", flat=True)) == [1, 1, 2]
