"""`ledger_verify`'s checks of the authorization MACs (ledger/authorization.py), in Python: the database lacks the key.

Each streams its rows in batches and names every row whose MAC is missing
or is not the application's, up to a limit.
"""

from __future__ import annotations

from types import SimpleNamespace

from ledger.authorization import authorization_matches, case_decision_authorized, hold_authorized

BATCH = 2000

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
    while len(found) < limit and (rows := cursor.fetchmany(BATCH)):
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


_HOLDS_SQL = """
SELECT h.public_id, a.public_id, d.public_id, h.currency, h.amount_minor, h.purpose, h.created_by_id, h.client_id,
       h.reference, h.movement_kind, h.transfer_public_id, h.authorization_mac, h.review_required
  FROM ledger_hold h
  JOIN ledger_ledgeraccount a ON a.id = h.account_id
  JOIN ledger_ledgeraccount d ON d.id = h.destination_id
 ORDER BY h.id"""


def holds_without_authorization(cursor, *, limit: int) -> list[tuple[str, str]]:
    """Holds whose MAC is missing or wrong: money reserved (and capturable) without the application."""
    found: list[tuple[str, str]] = []
    cursor.execute(_HOLDS_SQL)
    while len(found) < limit and (rows := cursor.fetchmany(BATCH)):
        for (public_id, account, destination, currency, amount_minor, purpose, created_by_id, client_id, reference,
             movement_kind, transfer_public_id, stored, review_required) in rows:  # fmt: skip
            hold = SimpleNamespace(
                public_id=public_id, currency=currency, amount_minor=amount_minor, purpose=purpose,
                created_by_id=created_by_id, client_id=client_id, reference=reference, movement_kind=movement_kind,
                transfer_public_id=transfer_public_id, authorization_mac=stored, review_required=review_required,
            )  # fmt: skip
            if not stored:
                found.append((str(public_id), "no authorization MAC: opened without the application"))
            elif not hold_authorized(hold, account=account, destination=destination):
                found.append((str(public_id), "authorization MAC does not match the hold the application opened"))
    return found[:limit]


_CASES_SQL = """
SELECT public_id, kind, status, decided_by_id, decision_reason, hold_id, subject_id, amount_minor, currency,
       decision_mac FROM ledger_reviewcase
 WHERE status IN ('approved', 'rejected') ORDER BY id"""


def case_decisions_without_authorization(cursor, *, limit: int) -> list[tuple[str, str]]:
    """Decided review cases whose decision MAC is missing or wrong: decided by writing the row, not by an officer."""
    found: list[tuple[str, str]] = []
    cursor.execute(_CASES_SQL)
    while len(found) < limit and (rows := cursor.fetchmany(BATCH)):
        for (public_id, kind, status, decided_by_id, decision_reason, hold_id, subject_id, amount_minor, currency,
             stored) in rows:  # fmt: skip
            case = SimpleNamespace(
                public_id=public_id, kind=kind, status=status, decided_by_id=decided_by_id,
                decision_reason=decision_reason, hold_id=hold_id, subject_id=subject_id, amount_minor=amount_minor,
                currency=currency, decision_mac=stored,
            )  # fmt: skip
            if not case_decision_authorized(case):
                found.append((str(public_id), f"{status} with no decision MAC of the application's"))
    return found[:limit]
