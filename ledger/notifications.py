"""The hook through which posted transfers reach customers and partners: a transactional outbox.

Every service that posts a transfer calls `transfer_posted(transfer)` inside
its transaction, after the postings and the audit event. It INSERTs the
outbox rows (`ledger.outbox.services`) on the same connection, so "money
moved" and "tell them" commit together or not at all, and registers an
on-commit request for delivery; `ledger.outbox.delivery` sends committed rows.

Rules for this hook: no network or broker I/O here (the caller holds account
row locks; a slow call would stall every transfer on those accounts), nothing
that can fail for reasons unrelated to the transfer, and no reads of other
customers' data (rows point at users; addresses are read at delivery).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledger.outbox.services import outbox_transfer_posted_record

if TYPE_CHECKING:
    from ledger.models import Transfer


def transfer_posted(transfer: Transfer) -> None:
    """Called once per posted transfer (every kind), inside the posting transaction: write its outbox rows."""
    outbox_transfer_posted_record(transfer=transfer)
