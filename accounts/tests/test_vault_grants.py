"""`vault_grant` in the API role: the operator authenticates; a vault key retirement needs a second person.

The grant it prints is what the vault role's key commands accept
(tokenvault/tests/test_staff_grants.py); here: who gets one, and when.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.approvals.models import ApprovalRequest
from accounts.approvals.services import approval_request_approve
from accounts.tests.operator_helpers import operator_create, operator_stdin
from fintech.staff_grants import staff_grant_open

pytestmark = pytest.mark.django_db


def grant(user, *arguments: str) -> str:
    stdout = io.StringIO()
    call_command("vault_grant", *arguments, stdout=stdout, stderr=io.StringIO(), stdin=operator_stdin(user))
    return stdout.getvalue().strip()


def test_a_rotation_grant_names_the_authenticated_operator():
    keeper = operator_create(email="keeper@example.com", roles=["security_admin"])
    payload = staff_grant_open(grant(keeper, "vault_rotate_key"), command="vault_rotate_key", args={})
    assert payload["operator"] == str(keeper.public_id) and payload["approved_by"] == ""
    with pytest.raises(CommandError, match=r"does not hold accounts\.manage_encryption_keys"):
        grant(operator_create(email="ops@example.com", roles=["operations"]), "vault_rotate_key")


def test_a_retirement_grant_comes_only_after_a_second_person_and_only_to_the_requester_once():
    keeper = operator_create(email="keeper@example.com", roles=["security_admin"])
    second = operator_create(email="second@example.com", roles=["security_admin"])
    asked = grant(keeper, "vault_retire_key", "--kek-version", "1", "--reason", "rotation finished")
    approval = ApprovalRequest.objects.get(kind="vault.key_retire")
    assert asked.startswith(f"requested: {approval.public_id}")
    fetch = ("vault_retire_key", "--kek-version", "1", "--approval", str(approval.public_id))

    with pytest.raises(CommandError, match="approval_not_pending"):
        grant(keeper, *fetch)  # not approved yet
    approval_request_approve(
        approval_id=approval.public_id, approver=second, change_hash=approval.change_hash,
        mfa_verified_at=timezone.now(),
    )  # fmt: skip
    with pytest.raises(CommandError, match="approval_not_permitted"):
        grant(second, *fetch)  # only the requester fetches it
    token = grant(keeper, *fetch)
    payload = staff_grant_open(token, command="vault_retire_key", args={"version": 1})
    assert (payload["operator"], payload["approved_by"]) == (str(keeper.public_id), str(second.public_id))
    assert token not in str(ApprovalRequest.objects.get(pk=approval.pk).result)  # never stored
    with pytest.raises(CommandError, match="fetched already"):
        grant(keeper, *fetch)


@pytest.mark.django_db(transaction=True)
def test_two_fetches_of_an_approved_retirement_grant_at_once_give_one_grant():
    from accounts.approvals.kinds_keys import vault_key_retire_request, vault_retire_grant_fetch
    from fintech.problems import DomainError
    from ledger.tests.test_concurrency import run_threads

    keeper = operator_create(email="keeper@example.com", roles=["security_admin"])
    second = operator_create(email="second@example.com", roles=["security_admin"])
    approval = vault_key_retire_request(version=1, requested_by=keeper, reason="rotation finished")
    approval_request_approve(
        approval_id=approval.public_id, approver=second, change_hash=approval.change_hash,
        mfa_verified_at=timezone.now(),
    )  # fmt: skip

    def fetch(_: int) -> str:
        try:
            vault_retire_grant_fetch(approval_id=approval.public_id, version=1, operator=keeper)
        except DomainError as refused:
            return refused.code
        return "fetched"

    assert sorted(run_threads(2, fetch)) == ["approval_not_pending", "fetched"]
