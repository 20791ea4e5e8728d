"""Fixtures for ledger tests.

Non-transactional tests run inside one transaction that is rolled back, so
the deferred zero-sum trigger would never fire. `_deferred_ledger_checks`
fires it at the end of every such test (SET CONSTRAINTS ALL IMMEDIATE), so
every service test is also checked by the database's own balance rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.db import connection

from audit.models import AuditEvent
from ledger.models import Hold, LedgerAccount, Posting, Transfer


@pytest.fixture(autouse=True)
def _deferred_ledger_checks(request):
    marker = request.node.get_closest_marker("django_db")
    transactional = marker is not None and (marker.kwargs.get("transaction") or (marker.args and marker.args[0]))
    if marker is None or transactional:
        yield
        return
    request.getfixturevalue("db")
    yield
    if connection.in_atomic_block and not connection.needs_rollback:
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


@dataclass(frozen=True)
class LedgerSnapshot:
    """Everything a refused operation must leave exactly as it was."""

    transfers: int
    postings: int
    holds: list
    ledger_events: int
    accounts: list

    @classmethod
    def take(cls) -> LedgerSnapshot:
        return cls(
            transfers=Transfer.objects.count(),
            postings=Posting.objects.count(),
            holds=list(Hold.objects.order_by("id").values_list("id", "status", "captured_minor")),
            ledger_events=AuditEvent.objects.filter(event_type__startswith="ledger.").count(),
            accounts=list(
                LedgerAccount.objects.order_by("id").values_list(
                    "id", "posted_minor", "held_minor", "version", "status"
                )
            ),
        )


@pytest.fixture
def nothing_written():
    """`with nothing_written(): ...`-style check: call it before, call `.check()` after."""

    class Guard:
        def __init__(self) -> None:
            self.before = LedgerSnapshot.take()

        def check(self) -> None:
            assert LedgerSnapshot.take() == self.before

    return Guard
