"""Reads of the ledger, scoped to the principal asking, bounded.

`account_get` is the door: every other read here takes an account that came
through it (or through a service), so a customer can only ever reach their
own entries. Another customer's account, a platform account and an id that
does not exist all look the same: `AccountNotFound`, so ids cannot be probed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from accounts.models import User
from ledger.currencies import format_amount
from ledger.exceptions import AccountNotFound, HoldNotFound, TransferNotFound
from ledger.models import CUSTOMER_REFUNDABLE_KINDS, Hold, LedgerAccount, Posting, Transfer

DEFAULT_STATEMENT_MAX_ROWS = 10_000
STATEMENT_MAX_DAYS = 366
STATEMENT_COLUMNS = (
    "booked_at",
    "transfer",
    "kind",
    "reference",
    "amount",
    "currency",
    "balance_after",
)
# Spreadsheets run cells starting with these as formulas (CSV injection).
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _as_uuid(value: Any) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def account_get(*, owner: User, public_id: Any) -> LedgerAccount:
    """The owner's own customer account with this public id; `AccountNotFound` for anything else."""
    wanted = _as_uuid(public_id)
    account = (
        LedgerAccount.objects.filter(owner=owner, public_id=wanted).exclude(kind=LedgerAccount.Kind.PLATFORM).first()
        if wanted is not None and owner is not None and owner.pk is not None
        else None
    )
    if account is None:
        raise AccountNotFound()
    return account


def transfer_destination_get(*, public_id: Any) -> LedgerAccount:
    """Any active customer account, to send money to; only the fact that it can receive is revealed."""
    wanted = _as_uuid(public_id)
    account = (
        LedgerAccount.objects.filter(public_id=wanted, status=LedgerAccount.Status.ACTIVE)
        .exclude(kind=LedgerAccount.Kind.PLATFORM)
        .first()
        if wanted is not None
        else None
    )
    if account is None:
        raise AccountNotFound()
    return account


def accounts_list(*, owner: User) -> QuerySet[LedgerAccount]:
    """The owner's accounts, oldest first; the API paginates (cursor on id), so none is ever cut off."""
    return LedgerAccount.objects.filter(owner=owner).exclude(kind=LedgerAccount.Kind.PLATFORM).order_by("id")


def hold_get_as_payee(*, owner: User, public_id: Any) -> Hold:
    """An authorisation hold whose destination is one of the owner's accounts (the payee captures or voids).

    The payer's own holds, review holds and anyone else's are `HoldNotFound`.
    """
    wanted = _as_uuid(public_id)
    hold = (
        Hold.objects.select_related("account", "destination")
        .filter(public_id=wanted, destination__owner=owner, purpose=Hold.Purpose.AUTHORISATION)
        .first()
        if wanted is not None and owner is not None
        else None
    )
    if hold is None:
        raise HoldNotFound()
    return hold


def transfer_get(*, owner: User, public_id: Any) -> Transfer | Hold:
    """A transfer with a posting on one of the owner's accounts; `TransferNotFound` otherwise.

    A movement the sender was answered 202 for and that is not posted (still
    held for review, or rejected) is its review hold, for the sender only: the
    payee learns of a transfer when it posts.
    """
    wanted = _as_uuid(public_id)
    if wanted is None or owner is None:
        raise TransferNotFound()
    transfer = Transfer.objects.filter(public_id=wanted, postings__account__owner=owner).distinct().first()
    if transfer is not None:
        return transfer
    held = (
        Hold.objects.select_related("account", "destination")
        .filter(transfer_public_id=wanted, account__owner=owner, purpose=Hold.Purpose.REVIEW)
        .exclude(status=Hold.Status.CAPTURED)
        .first()
    )
    if held is None:
        raise TransferNotFound()
    return held


def transfer_received_get(*, owner: User, public_id: Any) -> Transfer:
    """A transfer or capture credited to one of the owner's accounts (what a payee may refund); else `TransferNotFound`.

    The payer cannot reverse: that would let a sender claw money back from
    the payee. Deposits and credit charges are the platform's movements, not
    a payment a customer received from another: not refundable by a customer.
    """
    wanted = _as_uuid(public_id)
    transfer = (
        Transfer.objects.filter(
            public_id=wanted,
            postings__account__owner=owner,
            postings__amount_minor__gt=0,
            kind__in=CUSTOMER_REFUNDABLE_KINDS,
        )
        .distinct()
        .first()
        if wanted is not None and owner is not None
        else None
    )
    if transfer is None:
        raise TransferNotFound()
    return transfer


def account_balance_as_of(*, account: LedgerAccount, at: datetime) -> int:
    """The posted balance right after the last posting at or before `at`; 0 before the first one.

    Postings of one account are ordered by `account_version` (their creation
    time is read after the account lock, so it grows with the version).
    """
    balance = (
        Posting.objects.filter(account=account, created_at__lte=at)
        .order_by("-account_version")
        .values_list("balance_after_minor", flat=True)
        .first()
    )
    return balance or 0


def account_entries(*, account: LedgerAccount, as_of: datetime | None = None) -> QuerySet[Posting]:
    """The account's postings, newest first, with their transfers; the API paginates (cursor on created_at)."""
    entries = Posting.objects.filter(account=account).select_related("transfer")
    if as_of is not None:
        entries = entries.filter(created_at__lte=as_of)
    return entries.order_by("-created_at", "-id")


def _csv_safe(text: str) -> str:
    return f"'{text}" if text.startswith(_FORMULA_PREFIXES) else text


def statement_rows(*, account: LedgerAccount, start: datetime, end: datetime) -> Iterator[dict[str, str]]:
    """Rows for a CSV statement of [start, end), oldest first, amounts as exact decimal text.

    Bounded: at most STATEMENT_MAX_DAYS per statement and
    LEDGER_STATEMENT_MAX_ROWS rows (ValueError beyond, so a statement is never
    silently cut short). Text cells are defused against spreadsheet formulas.
    """
    if end <= start or end - start > timedelta(days=STATEMENT_MAX_DAYS):
        raise ValueError(f"a statement covers a period of at most {STATEMENT_MAX_DAYS} days")
    max_rows = getattr(settings, "LEDGER_STATEMENT_MAX_ROWS", DEFAULT_STATEMENT_MAX_ROWS)
    postings = (
        Posting.objects.filter(account=account, created_at__gte=start, created_at__lt=end)
        .select_related("transfer")
        .order_by("account_version")
    )
    if postings.count() > max_rows:
        raise ValueError(f"a statement has at most {max_rows} rows; choose a shorter period")
    for posting in postings.iterator(chunk_size=500):
        yield {
            "booked_at": posting.created_at.isoformat(),
            "transfer": str(posting.transfer.public_id),
            "kind": posting.transfer.kind,
            "reference": _csv_safe(posting.transfer.reference),
            "amount": format_amount(posting.amount_minor, posting.currency),
            "currency": posting.currency,
            "balance_after": format_amount(posting.balance_after_minor, posting.currency),
        }
