"""The vault role's key commands act only on a signed staff grant, once, for exactly that run (ADR 0015).

The vault cannot read the main database's staff: the API role authenticates
the operator (and, for a retirement, waits for a second person) and signs a
grant; the vault checks it with the public key and spends it in its own database.
"""

from __future__ import annotations

import io
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from audit.models import AuditEvent
from tokenvault.models import UsedStaffGrant
from tokenvault.tests.conftest import GRANT_OPERATOR, VAULT_DATABASES, past_retire_grace, staff_grant_token

pytestmark = pytest.mark.django_db(databases=VAULT_DATABASES)


def rotate(stdin_text: str):
    stdout = io.StringIO()
    call_command("vault_rotate_key", stdout=stdout, stderr=io.StringIO(), stdin=io.StringIO(stdin_text + "\n"))
    return stdout.getvalue()


def test_a_grant_names_the_operator_and_acts_once(provider):
    token = staff_grant_token("vault_rotate_key")

    assert rotate(token) == "KEK version 2 is now current\n"
    rotated = AuditEvent.objects.get(event_type="vault.kek_rotated")
    assert rotated.actor_staff == GRANT_OPERATOR and not rotated.actor_client
    with pytest.raises(CommandError, match=r"staff_grant_refused.*used already"):
        rotate(token)
    assert provider.versions() == [1, 2]
    assert UsedStaffGrant.objects.using("vault").count() == 1


@pytest.mark.parametrize(
    "make_token, message",
    [
        (lambda: "", "malformed"),
        (lambda: staff_grant_token("vault_rotate_key")[:-4] + "AAAA", "signature"),
        (lambda: staff_grant_token("vault_rotate_key", expires_in_seconds=-1), "expired"),
        (lambda: staff_grant_token("vault_rewrap"), "not this run"),
        (lambda: staff_grant_token("vault_rotate_key", {"version": 1}), "not this run"),
    ],
    ids=["none", "tampered", "expired", "another command", "other arguments"],
)
def test_a_missing_tampered_expired_or_foreign_grant_changes_nothing(provider, make_token, message):
    provider.current_kek()  # version 1 exists
    with pytest.raises(CommandError, match=message):
        rotate(make_token())
    assert provider.versions() == [1]
    assert not UsedStaffGrant.objects.using("vault").exists()


def test_a_refused_retirement_leaves_its_grant_unspent(provider):
    rotate(staff_grant_token("vault_rotate_key"))
    token = staff_grant_token("vault_retire_key", {"version": 1}, grant_id=uuid.uuid4())

    def retire():
        call_command("vault_retire_key", "1", stdout=io.StringIO(), stdin=io.StringIO(token + "\n"))

    with pytest.raises(CommandError, match="vault_kek_retire_too_soon"):
        retire()
    past_retire_grace(provider, 2)
    retire()
    assert provider.versions() == [2]
    with pytest.raises(CommandError, match="used already"):
        retire()
    assert UsedStaffGrant.objects.using("vault").filter(command="vault_retire_key").count() == 1
    assert timezone.now() >= UsedStaffGrant.objects.using("vault").get(command="vault_retire_key").used_at


@pytest.mark.django_db(databases=VAULT_DATABASES, transaction=True)
def test_one_grant_used_by_two_runs_at_once_acts_once():
    from fintech.problems import DomainError
    from ledger.tests.test_concurrency import run_threads
    from tokenvault.grants import staff_grant_use

    token = staff_grant_token("vault_rewrap")

    def use(_: int) -> str:
        try:
            staff_grant_use(token=token, command="vault_rewrap", args={})
        except DomainError as refused:
            return refused.code
        return "used"

    assert sorted(run_threads(2, use)) == ["staff_grant_refused", "used"]
    assert UsedStaffGrant.objects.using("vault").count() == 1
