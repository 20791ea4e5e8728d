"""Opening accounts and changing their status; platform accounts appear on first use."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.models import User
from audit.services.events import Actor
from ledger.currencies import MAX_AMOUNT_MINOR
from ledger.exceptions import AccountLimitReached, AccountNotActive, AccountNotEmpty, InvalidAmount
from ledger.lock_objects import accounts_lock
from ledger.models import LedgerAccount
from ledger.services.core import currency_check, ledger_call, ledger_event, reason_check


def account_open(
    *,
    owner: User,
    currency: str,
    kind: str = LedgerAccount.Kind.DEPOSIT,
    credit_limit_minor: int = 0,
    actor: Actor,
) -> LedgerAccount:
    """Open a customer account (deposit or credit line) with a zero balance.

    Errors: account_limit_reached (LEDGER_MAX_ACCOUNTS_PER_CUSTOMER accounts not closed), invalid_amount,
    unknown_currency.
    """
    currency_check(currency)
    if kind not in (LedgerAccount.Kind.DEPOSIT, LedgerAccount.Kind.CREDIT_LINE):
        raise ValueError(f"customers hold deposit or credit_line accounts, not {kind!r}")
    if isinstance(credit_limit_minor, bool) or not isinstance(credit_limit_minor, int):
        raise InvalidAmount("The credit limit must be a whole number of minor units.")
    if not 0 <= credit_limit_minor <= MAX_AMOUNT_MINOR or (credit_limit_minor and kind != "credit_line"):
        raise InvalidAmount("Only credit lines have a credit limit, and it must be within bounds.")
    with transaction.atomic():
        # One opening per customer at a time (their user row locked), so racing opens never pass the cap.
        User.objects.select_for_update().filter(pk=owner.pk).first()
        open_accounts = LedgerAccount.objects.filter(owner=owner).exclude(status=LedgerAccount.Status.CLOSED).count()
        if open_accounts >= settings.LEDGER_MAX_ACCOUNTS_PER_CUSTOMER:
            raise AccountLimitReached(
                f"A customer holds at most {settings.LEDGER_MAX_ACCOUNTS_PER_CUSTOMER} accounts that are not closed."
            )
        account_id = ledger_call(
            "ledger_account_open",
            {"owner_id": owner.pk, "kind": kind, "purpose": "", "currency": currency,
             "credit_limit_minor": credit_limit_minor},
            ledger_event(event_type="ledger.account.opened", actor=actor),
        )  # fmt: skip
    return LedgerAccount.objects.get(pk=account_id)


def platform_account_get_or_create(*, purpose: str, currency: str, actor: Actor) -> LedgerAccount:
    """The platform's account for `purpose` in `currency`, created on first use.

    Race-safe: the partial unique index on (purpose, currency) lets only one
    creator win; the loser's INSERT waits for the winner's COMMIT, fails inside
    a savepoint, and reads the winner's row. Call this before taking any
    account lock (see `ledger.lock_objects`), because the INSERT may wait.
    """
    currency_check(currency)
    if purpose not in (LedgerAccount.Purpose.FUNDING, LedgerAccount.Purpose.FEES, LedgerAccount.Purpose.SETTLEMENT):
        raise ValueError(f"unknown platform account purpose {purpose!r}")
    lookup = {"kind": LedgerAccount.Kind.PLATFORM, "purpose": purpose, "currency": currency}
    existing = LedgerAccount.objects.filter(**lookup).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            account_id = ledger_call(
                "ledger_account_open",
                {**lookup, "owner_id": None, "credit_limit_minor": 0},
                ledger_event(event_type="ledger.account.opened", actor=actor),
            )
        return LedgerAccount.objects.get(pk=account_id)
    except IntegrityError:
        return LedgerAccount.objects.get(**lookup)


def account_status_change(*, account: LedgerAccount, status: str, reason: str, actor: Actor) -> LedgerAccount:
    """Block, unblock or close an account. Closing needs a zero balance and no held money; closed is final."""
    reason = reason_check(reason)
    if status not in LedgerAccount.Status.values:
        raise ValueError(f"unknown account status {status!r}")
    with transaction.atomic():
        locked = accounts_lock([account.pk])[account.pk]
        if locked.status == LedgerAccount.Status.CLOSED:
            raise AccountNotActive("A closed account stays closed.")
        if status == LedgerAccount.Status.CLOSED and (locked.posted_minor != 0 or locked.held_minor != 0):
            raise AccountNotEmpty()
        ledger_call(
            "ledger_account_status_set",
            locked.pk,
            status,
            ledger_event(event_type="ledger.account.status_changed", actor=actor, payload={"reason": reason}),
        )
        locked.status = status
    return locked
