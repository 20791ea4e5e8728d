"""Real threads against real PostgreSQL: no lost update, no deadlock, no money created or destroyed.

Each thread has its own database connection (Django connections are
per-thread) and closes it when done. No retries are used here: a deadlock
would surface as an error and fail the test, which is the point.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from ledger.exceptions import InsufficientFunds
from ledger.invariants import ledger_verify
from ledger.lock_objects import accounts_lock
from ledger.models import LedgerAccount, Posting, Transfer, TransferLimit
from ledger.services import hold_create, hold_void, transfer_create
from ledger.tests.factories import TEST_ACTOR, account, customer, generous_limits, no_rules

pytestmark = pytest.mark.django_db(transaction=True)


THREADS = 16
TRANSFERS_PER_THREAD = 200
ACCOUNTS = 10


def run_threads(count: int, work: Callable[[int], object], *, timeout_seconds: float = 120) -> list:
    """Start `count` threads together; each runs work(index) and closes its connection. Returns results."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list[BaseException] = []

    def body(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = work(index)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=body, args=(index,), daemon=True) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout_seconds)
    assert not any(thread.is_alive() for thread in threads), "a thread hung (lock wait?)"
    assert errors == [], errors
    return results


def send(source: LedgerAccount, destination: LedgerAccount, amount_minor: int) -> Transfer:
    return transfer_create(
        from_public_id=source.public_id,
        to_public_id=destination.public_id,
        amount_minor=amount_minor,
        currency=source.currency,
        reference="load",
        initiated_by=source.owner,
        actor=TEST_ACTOR,
    )


def customer_total() -> int:
    return LedgerAccount.objects.exclude(kind="platform").aggregate(total=Sum("posted_minor"))["total"]


def assert_ledger_sound() -> None:
    assert LedgerAccount.objects.aggregate(total=Sum("posted_minor"))["total"] == 0  # platform included
    for row in LedgerAccount.objects.all():
        postings = Posting.objects.filter(account=row)
        assert row.posted_minor == (postings.aggregate(total=Sum("amount_minor"))["total"] or 0)
        last = postings.order_by("-account_version").first()
        assert row.posted_minor == (last.balance_after_minor if last else 0)
        if row.kind != "platform":
            assert row.posted_minor - row.held_minor >= -row.credit_limit_minor
    assert ledger_verify() == []


def test_random_transfers_from_16_threads_keep_every_invariant():
    """16 threads x 200 random transfers among 10 accounts, many refused for insufficient funds."""
    generous_limits()
    no_rules()
    accounts = [account(balance_minor=1_000_00) for _ in range(ACCOUNTS - 3)]
    accounts += [account(kind="credit_line", credit_limit_minor=500_00, balance_minor=200_00) for _ in range(3)]
    money_before = customer_total()

    def work(index: int) -> Counter:
        rng = random.Random(7919 * (index + 1))  # reproducible per thread
        outcome: Counter = Counter()
        for _ in range(TRANSFERS_PER_THREAD):
            source, destination = rng.sample(accounts, 2)
            try:
                send(source, destination, rng.randint(1, 600_00))
                outcome["posted"] += 1
            except InsufficientFunds:
                outcome["insufficient_funds"] += 1
        return outcome

    totals = sum(run_threads(THREADS, work), Counter())

    assert totals["posted"] + totals["insufficient_funds"] == THREADS * TRANSFERS_PER_THREAD
    assert totals["posted"] > 0
    assert totals["insufficient_funds"] > 0
    assert Transfer.objects.filter(kind="transfer").count() == totals["posted"]
    assert customer_total() == money_before
    assert_ledger_sound()


def test_a_hot_account_receiving_from_16_threads_loses_no_update():
    generous_limits()
    no_rules()
    per_thread = 25
    hot = account()
    sources = [account(balance_minor=10_000_00) for _ in range(THREADS)]

    def work(index: int) -> int:
        sent = 0
        for n in range(per_thread):
            amount = 1_00 + index * 10 + n  # distinct amounts: a lost update would show in the total
            send(sources[index], hot, amount)
            sent += amount
        return sent

    expected = sum(run_threads(THREADS, work))

    hot.refresh_from_db()
    assert hot.posted_minor == expected
    assert hot.version == THREADS * per_thread
    assert Posting.objects.filter(account=hot).count() == THREADS * per_thread
    assert sorted(Posting.objects.filter(account=hot).values_list("account_version", flat=True)) == list(
        range(1, THREADS * per_thread + 1)
    )
    assert_ledger_sound()


def test_opposite_transfers_between_two_accounts_never_deadlock():
    """A->B and B->A at once: locked in primary-key order, so neither waits for the other in a cycle."""
    generous_limits()
    no_rules()
    a, b = account(balance_minor=1_000_00), account(balance_minor=1_000_00)
    rounds = 200

    def work(index: int) -> None:
        source, destination = (a, b) if index % 2 == 0 else (b, a)
        for _ in range(rounds):
            send(source, destination, 1_00)

    run_threads(2, work)

    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.posted_minor, b.posted_minor) == (1_000_00, 1_000_00)
    assert Transfer.objects.filter(kind="transfer").count() == 2 * rounds
    assert_ledger_sound()


def test_a_transfer_waits_for_the_row_lock_held_by_another_transaction():
    generous_limits()
    no_rules()
    alice, bob = account(balance_minor=100_00), account()
    locked = threading.Event()
    release = threading.Event()
    finished_at: dict[str, float] = {}

    def holder() -> None:
        try:
            with transaction.atomic():
                accounts_lock([bob.pk])
                locked.set()
                release.wait(timeout=10)
                finished_at["holder"] = time.monotonic()
        finally:
            connection.close()

    def sender() -> None:
        try:
            locked.wait(timeout=10)
            send(alice, bob, 1_00)
            finished_at["sender"] = time.monotonic()
        finally:
            connection.close()

    threads = [threading.Thread(target=holder, daemon=True), threading.Thread(target=sender, daemon=True)]
    for thread in threads:
        thread.start()
    assert locked.wait(timeout=10)
    time.sleep(0.3)
    assert "sender" not in finished_at  # still waiting for bob's row
    release.set()
    for thread in threads:
        thread.join(timeout=10)

    assert finished_at["sender"] >= finished_at["holder"]
    bob.refresh_from_db()
    assert bob.posted_minor == 1_00


def test_concurrent_transfers_by_one_owner_respect_the_daily_limit_exactly():
    """The owner spend lock makes the limit check see every earlier transfer: 8 x 2,000.00 against 10,000.00."""
    no_rules()  # seeded limits stay: standard EUR 5,000.00 per transfer, 10,000.00 per day
    TransferLimit.objects.update_or_create(
        tier="standard",
        currency="EUR",
        defaults={"per_transfer_max_minor": 5_000_00, "daily_outgoing_max_minor": 10_000_00},
    )
    owner = customer()
    sources = [account(owner=owner, balance_minor=5_000_00) for _ in range(4)]
    bob = account()

    def work(index: int) -> str:
        try:
            send(sources[index % 4], bob, 2_000_00)
        except Exception as error:
            return getattr(error, "code", repr(error))
        return "posted"

    outcomes = Counter(run_threads(8, work))

    assert outcomes == Counter({"posted": 5, "limit_daily_exceeded": 3})
    bob.refresh_from_db()
    assert bob.posted_minor == 10_000_00


def test_holds_and_transfers_in_opposite_directions_never_deadlock():
    """A hold on A for B refers to B by foreign key; a transfer B->A locks B first. No cycle may form."""
    generous_limits()
    no_rules()
    b = account(balance_minor=1_000_00)  # lower primary key
    a = account(balance_minor=1_000_00)
    rounds = 100

    def work(index: int) -> None:
        for _ in range(rounds):
            if index == 0:
                hold = hold_create(
                    account=a,
                    destination=b,
                    amount_minor=1_00,
                    currency="EUR",
                    reference="x",
                    expires_at=timezone.now() + timedelta(days=1),
                    created_by=a.owner,
                    actor=TEST_ACTOR,
                )
                hold_void(hold=hold, voided_by=hold.destination.owner, actor=TEST_ACTOR)
            else:
                send(b, a, 1_00)

    run_threads(2, work)

    a.refresh_from_db()
    assert (a.posted_minor, a.held_minor) == (1_000_00 + rounds * 1_00, 0)
    assert_ledger_sound()
