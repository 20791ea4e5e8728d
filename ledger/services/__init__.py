"""Writes to the ledger: every function here moves money or changes what may move it.

Conventions, for every service in this package:

* keyword-only arguments and an explicit `actor` (`audit.services.events.Actor`);
* `transaction.atomic()` around the whole effect, including the audit event
  and the `ledger.notifications.transfer_posted` hook. Deliberately NOT
  `durable=True` (a departure from docs/adr/0003): the HTTP layer opens the
  durable transaction itself and stores the idempotency record in it, so a
  retried request either finds the committed transfer or nothing at all.
  Callers outside HTTP (commands, tasks) get a transaction of their own;
* locks only through `ledger.lock_objects`, once per operation, in its order;
* balances change through `ledger.services.core`, which checks the money
  invariants with explicit `raise`;
* refusals are `ledger.exceptions` domain errors, raised before anything is
  written or rolling back whatever was.

Deadlocks should not happen (one lock order), but a caller that owns the
outermost transaction may wrap it in `fintech.db_retry.run_with_retry`.
"""

from ledger.services.accounts import account_open, account_status_change, platform_account_get_or_create
from ledger.services.funding import credit_charge, deposit_from_funding
from ledger.services.holds import hold_capture, hold_create, hold_void, holds_expire
from ledger.services.reversals import transfer_reverse
from ledger.services.reviews import review_case_decide, review_cases_escalate
from ledger.services.transfers import PendingMovement, transfer_create

__all__ = [
    "PendingMovement",
    "account_open",
    "account_status_change",
    "credit_charge",
    "deposit_from_funding",
    "hold_capture",
    "hold_create",
    "hold_void",
    "holds_expire",
    "platform_account_get_or_create",
    "review_case_decide",
    "review_cases_escalate",
    "transfer_create",
    "transfer_reverse",
]
