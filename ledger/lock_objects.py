"""Every lock the ledger takes, in one place, always in one order.

The order, for every transaction that moves money:

1. ledger accounts, all at once, by primary key (`accounts_lock`);
2. then holds, by primary key (`holds_lock`);
3. then the payer's spend counter of the business day, taken by the policy
   step (`ledger_policy_check` in ledger/sql/policy.sql: SELECT ... FOR
   UPDATE on one row; at most one per transaction) and held to COMMIT: the
   owner's critical section for the daily limit, as short as the movement;
4. then transfers, by primary key (`transfers_lock`);
5. then review cases, by primary key (`review_cases_lock`).

Two transactions that follow this order can wait for each other but never
deadlock: whoever holds a lower-ranked lock never waits for a higher-ranked
one held by the other. Platform accounts are created (and may wait on the
unique index) before step 2, never after.

Foreign keys lock too: inserting a row that references an account takes a
KEY SHARE lock on that account, which waits for anyone holding it FOR UPDATE.
So every account a new row (posting, hold) refers to is locked here first,
in order, and never picked up implicitly later.

Rows are locked with `SELECT ... FOR UPDATE ... ORDER BY id` in a single
statement (for the money tables, inside `ledger_accounts_lock` & co. in
ledger/sql/movements.sql: FOR UPDATE needs UPDATE rights, which only the
definer role holds there): PostgreSQL locks rows in the order the sort
returns them, so two statements over overlapping sets acquire the common rows in the same order.
Every function refuses to run outside a transaction, where the lock would be
released the moment the statement ends.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

from ledger.exceptions import (
    AccountNotFound,
    HoldNotFound,
    LockOutsideTransaction,
    ReviewCaseNotFound,
    TransferNotFound,
)
from ledger.models import Hold, LedgerAccount, ReviewCase, Transfer

MAX_ROWS_LOCKED = 1000


def _require_transaction(what: str) -> None:
    if not connection.in_atomic_block:
        raise LockOutsideTransaction(f"{what} must run inside transaction.atomic(): the lock would protect nothing")


def _sorted_ids(ids: Iterable[int]) -> list[int]:
    unique = sorted({int(pk) for pk in ids})
    if not unique:
        raise ValueError("nothing to lock")
    if len(unique) > MAX_ROWS_LOCKED:
        raise ValueError(f"refusing to lock more than {MAX_ROWS_LOCKED} rows at once")
    return unique


def accounts_lock(ids: Iterable[int]) -> dict[int, LedgerAccount]:
    """Lock every account an operation touches, in one statement, by primary key; return them fresh.

    Raises `AccountNotFound` if any id does not exist (nothing is locked for long:
    the caller's transaction rolls back).
    """
    _require_transaction("accounts_lock")
    wanted = _sorted_ids(ids)
    rows = list(LedgerAccount.objects.raw("SELECT * FROM ledger_accounts_lock(%s::bigint[])", [wanted]))
    if len(rows) != len(wanted):
        raise AccountNotFound()
    return {row.id: row for row in rows}


def holds_lock(ids: Iterable[int]) -> dict[int, Hold]:
    """Lock holds by primary key; callers have already locked the holds' accounts."""
    _require_transaction("holds_lock")
    wanted = _sorted_ids(ids)
    rows = list(Hold.objects.raw("SELECT * FROM ledger_holds_lock(%s::bigint[])", [wanted]))
    if len(rows) != len(wanted):
        raise HoldNotFound()
    return {row.id: row for row in rows}


def transfers_lock(ids: Iterable[int]) -> dict[int, Transfer]:
    """Lock transfers (to grow `reversed_minor`); callers have already locked the transfers' accounts."""
    _require_transaction("transfers_lock")
    wanted = _sorted_ids(ids)
    rows = list(Transfer.objects.raw("SELECT * FROM ledger_transfers_lock(%s::bigint[])", [wanted]))
    if len(rows) != len(wanted):
        raise TransferNotFound()
    return {row.id: row for row in rows}


def review_cases_lock(ids: Iterable[int]) -> dict[int, ReviewCase]:
    """Lock review cases (to decide them); callers have already locked the case's accounts and hold."""
    _require_transaction("review_cases_lock")
    wanted = _sorted_ids(ids)
    rows = list(ReviewCase.objects.select_for_update().filter(id__in=wanted).order_by("id"))
    if len(rows) != len(wanted):
        raise ReviewCaseNotFound()
    return {row.id: row for row in rows}
