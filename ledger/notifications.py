"""The hook through which posted transfers will reach customers: a no-op for now.

Every service that posts a transfer calls `transfer_posted(transfer)` inside
its transaction, after the postings and the audit event. The outbox (a later
change) will INSERT one row here, on the same connection, so "money moved"
and "tell the customer" commit together or not at all: a relay then delivers
committed rows. Until then this does nothing.

Rules for whoever fills this in: no network or broker I/O here (the caller
holds account row locks; a slow call would stall every transfer on those
accounts), nothing that can fail for reasons unrelated to the transfer, and
no reads of other customers' data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ledger.models import Transfer


def transfer_posted(transfer: Transfer) -> None:
    """Called once per posted transfer (every kind), inside the posting transaction. Intentionally empty."""
    return None
