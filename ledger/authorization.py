"""A transfer's authorization MAC: what ties each movement to the application that decided it (issue 12).

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

The key is the Django secret (`fintech.macs`, a salt of its own): held by the
web, worker and ops processes, never by the database.
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


# Each transfer as its MAC was computed: the accounts its postings debit and credit, as the verifier sees them.
_TRANSFERS_SQL = """
SELECT t.public_id, t.kind, t.currency, t.amount_minor,
       (SELECT a.public_id FROM ledger_posting p JOIN ledger_ledgeraccount a ON a.id = p.account_id
         WHERE p.transfer_id = t.id AND p.amount_minor < 0 ORDER BY p.id LIMIT 1),
       (SELECT a.public_id FROM ledger_posting p JOIN ledger_ledgeraccount a ON a.id = p.account_id
         WHERE p.transfer_id = t.id AND p.amount_minor > 0 ORDER BY p.id LIMIT 1),
       t.initiated_by_id, t.client_id, t.reference, t.hold_id, t.reverses_id, t.authorization_mac
  FROM ledger_transfer t ORDER BY t.id"""


def transfers_without_authorization(cursor, *, limit: int) -> list[tuple[str, str]]:
    """(public id, why) of each transfer whose MAC is missing or is not the application's, up to `limit`.

    Streams the transfers in batches: the check is Python's (the database does not hold the key).
    """
    found: list[tuple[str, str]] = []
    cursor.execute(_TRANSFERS_SQL)
    while len(found) < limit and (rows := cursor.fetchmany(2000)):
        for (public_id, kind, currency, amount_minor, debit, credit, initiated_by_id, client_id, reference,
             hold_id, reverses_id, stored) in rows:  # fmt: skip
            if not stored:
                found.append((str(public_id), "no authorization MAC: posted without the application"))
            elif not authorization_matches(
                stored,
                public_id=public_id,
                kind=kind,
                currency=currency,
                amount_minor=amount_minor,
                debit_account=debit,
                credit_account=credit,
                initiated_by_id=initiated_by_id,
                client_id=client_id,
                reference=reference,
                hold_id=hold_id,
                reverses_id=reverses_id,
            ):
                found.append((str(public_id), "authorization MAC does not match the movement the application decided"))
    return found[:limit]
