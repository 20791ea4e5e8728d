"""Authorization MACs: what ties each movement, hold and review decision to the application (issue 12).

The runtime role may EXECUTE the ledger's functions (ADR 0016), so a stolen
database login alone could post a deposit, or a customer's money to the
insider, in any operator's or customer's name, and the movement would carry
a genuine-looking audit event. What that login lacks is the application's
secret: every path that moves money in Python (API, admin, commands, worker)
computes this MAC over the movement before calling the function, the
function refuses a movement without one, and `ledger_verify` recomputes it
for every transfer and names the transfer whose MAC does not match. The MAC
covers the transfer's public id, which is unique, so a MAC copied from a real
transfer cannot be replayed onto another.

Holds carry one too (a hold is a movement decided now and posted later: a
hold opened with the login alone would otherwise be captured by the payee
through the API, with a genuine transfer MAC), and so does a review case's
decision (a case approved by writing its row would release a held movement).
The application checks both before it posts (`ledger.services.core`), and
`ledger_verify` checks every row (`ledger/authorization_checks.py`).

The key is the Django secret (`fintech.macs`, a salt per kind of row): held
by the web, worker and ops processes, never by the database.
"""

from __future__ import annotations

import uuid
from typing import Any

from fintech.macs import row_mac_matches, row_mac_of

SALT = "ledger.transfer.authorization/1"


def authorization_values(
    *,
    public_id: uuid.UUID | str,
    kind: str,
    currency: str,
    amount_minor: int,
    debit_account: uuid.UUID | str,
    credit_account: uuid.UUID | str,
    initiated_by_id: int | None,
    client_id: str,
    reference: str,
    hold_id: int | None,
    reverses_id: int | None,
) -> list[Any]:
    """The movement as the MAC sees it: accounts by public id (the caller may not know their row ids yet)."""
    return [
        str(public_id),
        kind,
        currency,
        int(amount_minor),
        str(debit_account),
        str(credit_account),
        initiated_by_id,
        client_id or "",
        reference or "",
        hold_id,
        reverses_id,
    ]


def authorization_mac(**movement: Any) -> str:
    return row_mac_of(SALT, authorization_values(**movement))


def authorization_matches(stored: str | None, **movement: Any) -> bool:
    return row_mac_matches(stored, SALT, authorization_values(**movement))


HOLD_SALT = "ledger.hold.authorization/1"
CASE_DECISION_SALT = "ledger.review_case.decision/1"


# The Hold columns the MAC covers as they are (besides its public id, its accounts and review_required).
HOLD_MAC_FIELDS = (
    "currency", "amount_minor", "purpose", "created_by_id", "client_id", "reference", "movement_kind",
    "transfer_public_id",
)  # fmt: skip


def hold_authorization_values(
    *,
    public_id: uuid.UUID | str,
    account: uuid.UUID | str,
    destination: uuid.UUID | str,
    currency: str,
    amount_minor: int,
    purpose: str,
    created_by_id: int | None,
    client_id: str,
    reference: str,
    movement_kind: str,
    transfer_public_id: uuid.UUID | str | None,
    review_required: bool,
) -> list[Any]:
    return [
        bool(review_required),
        str(public_id),
        str(account),
        str(destination),
        currency,
        int(amount_minor),
        purpose,
        created_by_id,
        client_id or "",
        reference or "",
        movement_kind or "",
        str(transfer_public_id) if transfer_public_id else None,
    ]


def hold_authorization_mac(**hold: Any) -> str:
    return row_mac_of(HOLD_SALT, hold_authorization_values(**hold))


def hold_authorized(hold, *, account: uuid.UUID | str, destination: uuid.UUID | str) -> bool:
    """Whether a Hold row carries the application's MAC (its accounts given by public id)."""
    return row_mac_matches(
        hold.authorization_mac,
        HOLD_SALT,
        hold_authorization_values(
            public_id=hold.public_id, account=account, destination=destination,
            review_required=hold.review_required, **{field: getattr(hold, field) for field in HOLD_MAC_FIELDS},
        ),
    )  # fmt: skip


def case_decision_values(case) -> list[Any]:
    """A decided review case as its officer decided it: status, officer, reason, and what it is about (the hold,
    whose customer, how much): a case re-pointed at another hold, or re-sized, no longer matches."""
    return [
        str(case.public_id), case.kind, case.status, case.decided_by_id, case.decision_reason, case.hold_id,
        case.subject_id, int(case.amount_minor), case.currency,
    ]  # fmt: skip


def case_decision_mac(case) -> str:
    return row_mac_of(CASE_DECISION_SALT, case_decision_values(case))


def case_decision_authorized(case) -> bool:
    return row_mac_matches(case.decision_mac, CASE_DECISION_SALT, case_decision_values(case))
