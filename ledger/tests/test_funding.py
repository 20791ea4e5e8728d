"""Deposits from platform funding, credit-line charges, platform accounts and account opening."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from ledger.exceptions import (
    AccountNotActive,
    CurrencyMismatch,
    InsufficientFunds,
    InvalidAmount,
    NotACreditLine,
    PlatformAccountNotAllowed,
    ReasonRequired,
    UnknownCurrency,
)
from ledger.invariants import ledger_verify
from ledger.models import LedgerAccount
from ledger.services import (
    account_open,
    account_status_change,
    credit_charge,
    deposit_from_funding,
    platform_account_get_or_create,
)
from ledger.tests.factories import TEST_ACTOR, account, customer

pytestmark = pytest.mark.django_db


def test_a_deposit_comes_from_the_funding_account_created_on_first_use():
    alice = account()
    assert not LedgerAccount.objects.filter(kind="platform").exists()

    transfer = deposit_from_funding(account=alice, amount_minor=250_00, reason="bank wire 123", actor=TEST_ACTOR)

    funding = LedgerAccount.objects.get(kind="platform", purpose="funding", currency="EUR")
    alice.refresh_from_db()
    assert (alice.posted_minor, funding.posted_minor) == (250_00, -250_00)
    assert (transfer.kind, transfer.amount_minor, transfer.reference, transfer.initiated_by) == (
        "deposit",
        250_00,
        "bank wire 123",
        None,
    )
    event = AuditEvent.objects.get(event_type="ledger.deposit.posted")
    assert event.payload["reason"] == "bank wire 123"

    deposit_from_funding(account=alice, amount_minor=1_00, reason="again", actor=TEST_ACTOR)
    assert LedgerAccount.objects.filter(kind="platform").count() == 1
    funding.refresh_from_db()
    assert funding.posted_minor == -251_00
    assert ledger_verify() == []


def test_each_currency_has_its_own_funding_account():
    deposit_from_funding(account=account(currency="JPY"), amount_minor=5000, reason="x", actor=TEST_ACTOR)
    deposit_from_funding(account=account(currency="KWD"), amount_minor=1_234, reason="x", actor=TEST_ACTOR)

    assert dict(LedgerAccount.objects.filter(kind="platform").values_list("currency", "posted_minor")) == {
        "JPY": -5000,
        "KWD": -1_234,
    }


@pytest.mark.parametrize("reason", ["", "  ", None])
def test_a_deposit_needs_a_reason(reason, nothing_written):
    alice = account()
    guard = nothing_written()

    with pytest.raises(ReasonRequired):
        deposit_from_funding(account=alice, amount_minor=1_00, reason=reason, actor=TEST_ACTOR)

    guard.check()


def test_deposits_into_platform_or_blocked_accounts_are_refused(nothing_written):
    alice = account()
    fees = platform_account_get_or_create(purpose="fees", currency="EUR", actor=TEST_ACTOR)
    account_status_change(account=alice, status="blocked", reason="kyc", actor=TEST_ACTOR)
    alice.refresh_from_db()
    guard = nothing_written()

    with pytest.raises(PlatformAccountNotAllowed):
        deposit_from_funding(account=fees, amount_minor=1_00, reason="x", actor=TEST_ACTOR)
    with pytest.raises(AccountNotActive):
        deposit_from_funding(account=alice, amount_minor=1_00, reason="x", actor=TEST_ACTOR)
    with pytest.raises(InvalidAmount):
        deposit_from_funding(account=alice, amount_minor=-1, reason="x", actor=TEST_ACTOR)

    guard.check()


def test_platform_accounts_are_unique_per_purpose_and_currency():
    first = platform_account_get_or_create(purpose="settlement", currency="USD", actor=TEST_ACTOR)
    again = platform_account_get_or_create(purpose="settlement", currency="USD", actor=TEST_ACTOR)

    assert first.pk == again.pk
    assert (first.owner, first.kind, first.purpose, first.status) == (None, "platform", "settlement", "active")
    assert AuditEvent.objects.filter(event_type="ledger.account.opened", object_id=str(first.public_id)).count() == 1
    with pytest.raises(ValueError):
        platform_account_get_or_create(purpose="jackpot", currency="USD", actor=TEST_ACTOR)


def test_a_credit_charge_uses_the_credit_line_and_pays_settlement():
    line = account(kind="credit_line", credit_limit_minor=1_000_00)

    charge = credit_charge(
        account=line,
        amount_minor=999_99,
        currency="EUR",
        reference="laptop",
        initiated_by=line.owner,
        client_id="pos-terminal",
        actor=TEST_ACTOR,
    )

    settlement = LedgerAccount.objects.get(kind="platform", purpose="settlement", currency="EUR")
    line.refresh_from_db()
    assert (line.posted_minor, line.available_minor, settlement.posted_minor) == (-999_99, -999_99, 999_99)
    assert (charge.kind, charge.client_id, charge.initiated_by) == ("credit_charge", "pos-terminal", line.owner)
    assert AuditEvent.objects.filter(event_type="ledger.credit_charge.posted").count() == 1
    with pytest.raises(InsufficientFunds):
        credit_charge(account=line, amount_minor=2, currency="EUR", reference="x", actor=TEST_ACTOR)
    credit_charge(account=line, amount_minor=1, currency="EUR", reference="x", actor=TEST_ACTOR)
    assert ledger_verify() == []


def test_credit_charges_need_a_credit_line_in_the_right_currency(nothing_written):
    deposit = account(balance_minor=100_00)
    line = account(kind="credit_line", credit_limit_minor=100_00)
    guard = nothing_written()

    with pytest.raises(NotACreditLine) as error:
        credit_charge(account=deposit, amount_minor=1_00, currency="EUR", reference="x", actor=TEST_ACTOR)
    with pytest.raises(CurrencyMismatch):
        credit_charge(account=line, amount_minor=1_00, currency="USD", reference="x", actor=TEST_ACTOR)

    assert (error.value.code, error.value.status) == ("not_a_credit_line", 422)
    guard.check()


def test_account_opening_rules():
    owner = customer()

    opened = account_open(owner=owner, currency="GBP", actor=TEST_ACTOR)

    assert (opened.kind, opened.status, opened.posted_minor, opened.held_minor, opened.version) == (
        "deposit",
        "active",
        0,
        0,
        0,
    )
    assert AuditEvent.objects.get(event_type="ledger.account.opened", object_id=str(opened.public_id))
    with pytest.raises(InvalidAmount):
        account_open(owner=owner, currency="GBP", credit_limit_minor=1_00, actor=TEST_ACTOR)
    with pytest.raises(UnknownCurrency):
        account_open(owner=owner, currency="ZZZ", actor=TEST_ACTOR)
    with pytest.raises(ValueError):
        account_open(owner=owner, currency="GBP", kind="platform", actor=TEST_ACTOR)
