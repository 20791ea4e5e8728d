"""`ledger_verify`: the whole ledger, checked against its own history.

Each check is one aggregate query, all run in one REPEATABLE READ READ ONLY
transaction (when called outside a transaction), so every check sees the
same snapshot and a transfer committing halfway cannot produce a false alarm.

What is checked:

* every transfer has postings, they sum to zero per currency, and they are in
  the transfer's currency and their account's currency;
* every account's `posted_minor` equals the sum of its postings and the last
  posting's `balance_after_minor`; each posting's `balance_after_minor` is the
  previous one plus its amount (the chain, in `account_version` order);
* versions: postings of an account have increasing versions (the unique index
  makes them distinct) and none is above the account's `version`;
* `held_minor` equals the sum of the remaining amounts of active holds;
* no customer account is below its credit limit;
* every transfer's `reversed_minor` equals the sum of its reversals, and every
  hold's `captured_minor` the sum of its captures;
* every transfer has an audit event that describes it (issue 12: money that moves
  without its record in the trail, or differs from it, is named): its kind,
  amount, currency, initiator and postings (account, amount) as the event says
  them. Events written before ledger migration 0010 do not name the initiator:
  a database holding such transfers is re-seeded (pre-release), not migrated.
  Transfers older than the oldest event kept (after `audit_purge`) are not
  checked; that the event itself is genuine is `audit_verify`'s to say;
* every transfer and every hold carries the authorization MAC of the
  application that decided it, and every decided review case the MAC of its
  decision (ledger/authorization.py): a movement posted, a hold opened or a
  case decided with the database login alone is named;
* every decided review case has the audit event of its decision (a case
  approved by writing its row, not by an officer, is named);
* every spend counter (owner, currency, business day) equals what the
  movements that counted on that day say: transfers, credit charges and
  refunds with that `limit_day`, plus each hold reserved that day (its whole
  amount while active or captured, only what it captured once released).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction

from ledger.authorization_checks import (
    case_decisions_without_authorization,
    holds_without_authorization,
    transfers_without_authorization,
)

MAX_PROBLEMS_PER_CHECK = 1000


@dataclass(frozen=True, slots=True)
class Problem:
    check: str
    object_type: str  # "account", "transfer", "hold" or "spend_counter"
    object_id: str  # public id (a spend counter: owner id, currency, business day)
    detail: str

    def __str__(self) -> str:
        return f"{self.check}: {self.object_type} {self.object_id}: {self.detail}"


# (check name, object type, SQL returning (public_id, detail) rows). Literals only.
_CHECKS: list[tuple[str, str, str]] = [
    (
        "transfer_without_postings",
        "transfer",
        """SELECT t.public_id::text, 'no postings' FROM ledger_transfer t
           WHERE NOT EXISTS (SELECT 1 FROM ledger_posting p WHERE p.transfer_id = t.id) ORDER BY t.id""",
    ),
    (
        "transfer_unbalanced",
        "transfer",
        """SELECT t.public_id::text, 'postings in ' || p.currency || ' sum to ' || sum(p.amount_minor)
           FROM ledger_posting p JOIN ledger_transfer t ON t.id = p.transfer_id
           GROUP BY t.id, t.public_id, p.currency HAVING sum(p.amount_minor) <> 0 ORDER BY t.id""",
    ),
    (
        "transfer_amount_mismatch",
        "transfer",
        """SELECT t.public_id::text, 'amount ' || t.amount_minor || ' but postings credit '
                  || sum(p.amount_minor) FILTER (WHERE p.amount_minor > 0)
           FROM ledger_posting p JOIN ledger_transfer t ON t.id = p.transfer_id
           GROUP BY t.id, t.public_id, t.amount_minor
           HAVING sum(p.amount_minor) FILTER (WHERE p.amount_minor > 0) IS DISTINCT FROM t.amount_minor
           ORDER BY t.id""",
    ),
    (
        "posting_currency_mismatch",
        "transfer",
        """SELECT DISTINCT t.public_id::text, 'posting ' || p.id || ' in ' || p.currency || ', transfer in '
                  || t.currency || ', account in ' || a.currency
           FROM ledger_posting p JOIN ledger_transfer t ON t.id = p.transfer_id
           JOIN ledger_ledgeraccount a ON a.id = p.account_id
           WHERE p.currency <> t.currency OR p.currency <> a.currency""",
    ),
    (
        "posted_not_sum_of_postings",
        "account",
        """SELECT a.public_id::text, 'posted ' || a.posted_minor || ' but postings sum to '
                  || coalesce(s.total, 0)
           FROM ledger_ledgeraccount a
           LEFT JOIN (SELECT account_id, sum(amount_minor) AS total FROM ledger_posting GROUP BY account_id) s
                  ON s.account_id = a.id
           WHERE a.posted_minor <> coalesce(s.total, 0) ORDER BY a.id""",
    ),
    (
        "posted_not_last_balance",
        "account",
        """SELECT a.public_id::text, 'posted ' || a.posted_minor || ' but last posting says '
                  || coalesce(last.balance_after_minor, 0)
           FROM ledger_ledgeraccount a
           LEFT JOIN LATERAL (SELECT p.balance_after_minor FROM ledger_posting p WHERE p.account_id = a.id
                              ORDER BY p.account_version DESC LIMIT 1) last ON true
           WHERE a.posted_minor <> coalesce(last.balance_after_minor, 0) ORDER BY a.id""",
    ),
    (
        "balance_chain_broken",
        "account",
        """SELECT a.public_id::text, 'posting ' || c.id || ': balance after ' || c.balance_after_minor
                  || ' but previous ' || c.previous || ' plus amount ' || c.amount_minor
           FROM (SELECT p.id, p.account_id, p.amount_minor, p.balance_after_minor,
                        coalesce(lag(p.balance_after_minor) OVER w, 0) AS previous
                 FROM ledger_posting p WINDOW w AS (PARTITION BY p.account_id ORDER BY p.account_version)) c
           JOIN ledger_ledgeraccount a ON a.id = c.account_id
           WHERE c.balance_after_minor <> c.previous + c.amount_minor ORDER BY c.id""",
    ),
    (
        "version_inconsistent",
        "account",
        """SELECT a.public_id::text, 'version ' || a.version || ' but ' || count(p.id) || ' postings up to version '
                  || coalesce(max(p.account_version), 0)
           FROM ledger_ledgeraccount a LEFT JOIN ledger_posting p ON p.account_id = a.id
           GROUP BY a.id, a.public_id, a.version
           HAVING coalesce(max(p.account_version), 0) > a.version OR count(p.id) > a.version
           ORDER BY a.id""",
    ),
    (
        "version_out_of_order",
        "account",
        """SELECT a.public_id::text, 'posting ' || c.id || ' has version ' || c.account_version
                  || ' below an earlier posting'
           FROM (SELECT p.id, p.account_id, p.account_version,
                        lag(p.account_version) OVER (PARTITION BY p.account_id ORDER BY p.id) AS previous
                 FROM ledger_posting p) c
           JOIN ledger_ledgeraccount a ON a.id = c.account_id
           WHERE c.account_version <= c.previous ORDER BY c.id""",
    ),
    (
        "held_not_sum_of_holds",
        "account",
        """SELECT a.public_id::text, 'held ' || a.held_minor || ' but active holds keep ' || coalesce(h.total, 0)
           FROM ledger_ledgeraccount a
           LEFT JOIN (SELECT account_id, sum(amount_minor - captured_minor) AS total FROM ledger_hold
                      WHERE status = 'active' GROUP BY account_id) h ON h.account_id = a.id
           WHERE a.held_minor <> coalesce(h.total, 0) ORDER BY a.id""",
    ),
    (
        "below_credit_limit",
        "account",
        """SELECT a.public_id::text, 'available ' || (a.posted_minor - a.held_minor) || ' below limit -'
                  || a.credit_limit_minor
           FROM ledger_ledgeraccount a
           WHERE a.kind <> 'platform' AND a.posted_minor - a.held_minor < -a.credit_limit_minor ORDER BY a.id""",
    ),
    (
        "reversed_not_sum_of_reversals",
        "transfer",
        """SELECT t.public_id::text, 'reversed ' || t.reversed_minor || ' but reversals total ' || coalesce(r.total, 0)
           FROM ledger_transfer t
           LEFT JOIN (SELECT reverses_id, sum(amount_minor) AS total FROM ledger_transfer
                      WHERE reverses_id IS NOT NULL GROUP BY reverses_id) r ON r.reverses_id = t.id
           WHERE t.reversed_minor <> coalesce(r.total, 0) OR t.reversed_minor > t.amount_minor ORDER BY t.id""",
    ),
    (
        "captured_not_sum_of_captures",
        "hold",
        """SELECT h.public_id::text, 'captured ' || h.captured_minor || ' but captures total ' || coalesce(c.total, 0)
           FROM ledger_hold h
           LEFT JOIN (SELECT hold_id, sum(amount_minor) AS total FROM ledger_transfer
                      WHERE hold_id IS NOT NULL GROUP BY hold_id) c ON c.hold_id = h.id
           WHERE h.captured_minor <> coalesce(c.total, 0) ORDER BY h.id""",
    ),
    (
        "spend_counter_not_sum_of_movements",
        "spend_counter",
        """WITH counted AS (
               SELECT a.owner_id, t.currency, t.limit_day, t.amount_minor AS amount_minor
                 FROM ledger_transfer t
                 JOIN ledger_posting p ON p.transfer_id = t.id AND p.amount_minor < 0
                 JOIN ledger_ledgeraccount a ON a.id = p.account_id
                WHERE t.limit_day IS NOT NULL
               UNION ALL
               SELECT a.owner_id, h.currency, h.limit_day,
                      CASE WHEN h.status IN ('voided', 'expired') THEN h.captured_minor ELSE h.amount_minor END
                 FROM ledger_hold h JOIN ledger_ledgeraccount a ON a.id = h.account_id
                WHERE h.limit_day IS NOT NULL),
           totals AS (SELECT owner_id, currency, limit_day, sum(amount_minor) AS total
                        FROM counted GROUP BY owner_id, currency, limit_day)
           SELECT coalesce(c.owner_id, t.owner_id)::text || ' ' || coalesce(c.currency, t.currency) || ' '
                  || coalesce(c.business_day, t.limit_day)::text,
                  'counter ' || coalesce(c.outgoing_minor, 0) || ' but movements total ' || coalesce(t.total, 0)
             FROM ledger_spendcounter c
             FULL JOIN totals t
               ON t.owner_id = c.owner_id AND t.currency = c.currency AND t.limit_day = c.business_day
            WHERE coalesce(c.outgoing_minor, 0) <> coalesce(t.total, 0)
            ORDER BY 1""",
    ),
]


_CHECKS.append(
    (
        "transfer_not_in_audit_trail",
        "transfer",
        # events: the movement each audit event describes (its payload, or a hold capture's "transfer" object),
        # its postings sorted once; compared: each transfer against it, every difference named in one pass.
        """WITH events AS (
           SELECT DISTINCT ON (m.movement->>'transfer')
                  m.movement->>'transfer' AS transfer_id,
                  m.movement->>'kind' AS kind,
                  (m.movement->>'amount_minor')::bigint AS amount_minor,
                  m.movement->>'currency' AS currency,
                  m.movement->>'initiated_by' AS initiated_by,
                  (SELECT jsonb_agg(x ORDER BY x->>'account', (x->>'amount_minor')::bigint)
                     FROM jsonb_array_elements(m.movement->'postings') x) AS postings
             FROM (SELECT e.id, CASE WHEN jsonb_typeof(e.payload->'transfer') = 'object' THEN e.payload->'transfer'
                                     ELSE e.payload END AS movement
                     FROM audit_auditevent e
                    WHERE e.object_type IN ('ledger.transfer', 'ledger.hold') AND e.event_type LIKE 'ledger.%%') m
            WHERE jsonb_typeof(m.movement->'postings') = 'array' AND m.movement ? 'transfer'
            ORDER BY m.movement->>'transfer', m.id),
                 kept_since AS (SELECT min(occurred_at) AS since FROM audit_auditevent),
                 compared AS (
                   SELECT t.id, t.public_id, e.transfer_id IS NULL AS missing,
                          concat_ws(', ',
                            CASE WHEN e.kind IS DISTINCT FROM t.kind THEN 'kind' END,
                            CASE WHEN e.amount_minor IS DISTINCT FROM t.amount_minor THEN 'amount' END,
                            CASE WHEN e.currency IS DISTINCT FROM t.currency THEN 'currency' END,
                            CASE WHEN e.initiated_by IS DISTINCT FROM (
                                   SELECT u.public_id::text FROM accounts_user u WHERE u.id = t.initiated_by_id)
                                 THEN 'initiator' END,
                            CASE WHEN e.postings IS DISTINCT FROM (
                                   SELECT jsonb_agg(jsonb_build_object('account', a.public_id::text,
                                                                       'amount_minor', p.amount_minor)
                                                    ORDER BY a.public_id::text, p.amount_minor)
                                     FROM ledger_posting p JOIN ledger_ledgeraccount a ON a.id = p.account_id
                                    WHERE p.transfer_id = t.id) THEN 'postings' END) AS differences
                     FROM ledger_transfer t CROSS JOIN kept_since k
                     LEFT JOIN events e ON e.transfer_id = t.public_id::text
                    WHERE k.since IS NULL OR t.created_at >= k.since)
           SELECT public_id::text,
                  CASE WHEN missing THEN 'moved money with no audit event describing it'
                       ELSE 'differs from its audit event: ' || differences END
             FROM compared
            WHERE missing OR differences <> ''
            ORDER BY id""",
    )
)


_CHECKS.append(
    (
        "review_case_decided_without_event",
        "review_case",
        # A decision is the officer's, recorded by the service with it; a case whose status changed with no such
        # event was decided behind the application's back (the runtime role can write cases: ADR 0016).
        """SELECT c.public_id::text, 'decided ' || c.status || ' with no audit event recording the decision'
             FROM ledger_reviewcase c CROSS JOIN (SELECT min(occurred_at) AS since FROM audit_auditevent) k
            WHERE c.status IN ('approved', 'rejected') AND (k.since IS NULL OR c.decided_at >= k.since)
              AND NOT EXISTS (SELECT 1 FROM audit_auditevent e
                               WHERE e.object_type = 'ledger.review_case' AND e.object_id = c.public_id::text
                                 AND e.event_type = 'ledger.review_case.' || c.status)
            ORDER BY c.id""",
    )
)


_CHECKS.append(
    (
        "hold_released_without_review",
        "hold",
        # Money that left a hold whose review it needed: the approved case of this very hold, for its amount and
        # payer. That an approved case's decision is the officer's is the MAC check's to say (below).
        """SELECT h.public_id::text,
                  CASE WHEN c.id IS NULL THEN 'money left it with no review case'
                       WHEN c.status <> 'approved' THEN 'money left it while its case is ' || c.status
                       ELSE 'its case is about ' || c.amount_minor || ' ' || c.currency
                            || ', the hold ' || h.amount_minor END
             FROM ledger_hold h
             JOIN ledger_ledgeraccount a ON a.id = h.account_id
             LEFT JOIN ledger_reviewcase c ON c.hold_id = h.id
            WHERE h.review_required AND h.captured_minor > 0
              AND (c.id IS NULL OR c.status <> 'approved' OR c.amount_minor <> h.amount_minor
                   OR c.currency <> h.currency OR c.subject_id IS DISTINCT FROM a.owner_id)
            ORDER BY h.id""",
    )
)


# MACs under the application's key (ledger/authorization.py): checked in Python, row by row.
_AUTHORIZATION_CHECKS = [
    ("transfer_not_authorized", "transfer", transfers_without_authorization),
    ("hold_not_authorized", "hold", holds_without_authorization),
    ("review_case_decision_not_authorized", "review_case", case_decisions_without_authorization),
]


def _run_checks() -> list[Problem]:
    problems: list[Problem] = []
    with connection.cursor() as cursor:
        for check, object_type, sql in _CHECKS:
            cursor.execute(sql + " LIMIT %s", [MAX_PROBLEMS_PER_CHECK])
            problems.extend(Problem(check, object_type, object_id, detail) for object_id, detail in cursor.fetchall())
        for check, object_type, finder in _AUTHORIZATION_CHECKS:
            problems.extend(
                Problem(check, object_type, object_id, detail)
                for object_id, detail in finder(cursor, limit=MAX_PROBLEMS_PER_CHECK)
            )
    return problems


_EXTENT_SQL = """SELECT (SELECT count(*) FROM ledger_ledgeraccount), (SELECT count(*) FROM ledger_transfer),
                         (SELECT count(*) FROM ledger_posting), (SELECT count(*) FROM ledger_hold),
                         (SELECT count(*) FROM ledger_spendcounter)"""
EXTENT_NAMES = ("accounts", "transfers", "postings", "holds", "spend counters")


@dataclass(frozen=True, slots=True)
class Verification:
    """What was checked (row counts of the same snapshot) and what was found broken."""

    extent: dict[str, int]
    problems: list[Problem]


def ledger_verification() -> Verification:
    """Every check over one snapshot, with how many rows it covered: what an operator reads."""
    if connection.in_atomic_block:
        return _verification()  # inside the caller's transaction: its snapshot rules
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return _verification()


def _verification() -> Verification:
    with connection.cursor() as cursor:
        cursor.execute(_EXTENT_SQL)
        extent = dict(zip(EXTENT_NAMES, cursor.fetchone(), strict=True))
    return Verification(extent=extent, problems=_run_checks())


def ledger_verify() -> list[Problem]:
    """Every broken invariant of the whole ledger (up to MAX_PROBLEMS_PER_CHECK per check); [] when sound."""
    return ledger_verification().problems
