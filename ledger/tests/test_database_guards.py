"""What PostgreSQL itself refuses, whoever writes: unbalanced transfers, edited postings, overdrawn accounts."""

from __future__ import annotations

import itertools
import threading

import psycopg
import pytest
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from conftest import database_url
from fintech.db_privileges import write_once_tables
from fintech.db_retry import sqlstate_of
from ledger.exceptions import AccountNotFound, LockOutsideTransaction
from ledger.lock_objects import accounts_lock, holds_lock, transfers_lock
from ledger.models import Hold, LedgerAccount, Posting, Transfer
from ledger.services import platform_account_get_or_create, transfer_create
from ledger.tests.factories import TEST_ACTOR, account, as_ledger_definer, customer, generous_limits, send

_versions = itertools.count(1000)  # unique per account: these postings never went through the balance update


def insert_transfer(postings: list[tuple[LedgerAccount, int]], *, currency: str = "EUR") -> Transfer:
    """Straight INSERTs, bypassing the functions: what only the definer role (a superuser) could do."""
    with as_ledger_definer():
        transfer = Transfer.objects.create(
            kind="transfer", currency=currency, amount_minor=max(amount for _, amount in postings)
        )
        for target, amount in postings:
            version = next(_versions)
            Posting.objects.create(
                transfer=transfer,
                account=target,
                amount_minor=amount,
                currency=currency,
                balance_after_minor=amount,
                account_version=version,
            )
    return transfer


# --- the zero-sum rule, checked at COMMIT ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_unbalanced_transfer_fails_at_commit_and_leaves_nothing():
    alice, bob = account(), account()

    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
        insert_transfer([(alice, -100), (bob, 99)])
        # Inside the transaction nothing has complained yet: the check is deferred to COMMIT.
        assert Posting.objects.count() == 2

    assert Transfer.objects.count() == 0
    assert Posting.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_balanced_set_commits_and_a_posting_in_a_foreign_currency_does_not():
    alice, bob, dollars = account(), account(), account(currency="USD")

    with transaction.atomic():
        insert_transfer([(alice, -100), (bob, 100)])
    assert Posting.objects.count() == 2

    with pytest.raises(IntegrityError, match="is in EUR but account"), transaction.atomic():
        insert_transfer([(alice, -100), (dollars, 100)])
    assert Posting.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_transfer_without_postings_fails_at_commit():
    with pytest.raises(IntegrityError, match="has no postings"), transaction.atomic(), as_ledger_definer():
        Transfer.objects.create(kind="deposit", currency="EUR", amount_minor=100)

    assert Transfer.objects.count() == 0


@pytest.mark.django_db
def test_the_balance_check_also_fires_on_demand_inside_a_transaction():
    alice, bob = account(), account()

    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
        insert_transfer([(alice, -100), (bob, 101)])
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


# --- postings are append-only ----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_posting SET amount_minor = amount_minor * 2",
        "UPDATE ledger_posting SET balance_after_minor = 0",
        "DELETE FROM ledger_posting",
        "TRUNCATE ledger_posting CASCADE",
    ],
)
def test_even_the_table_owner_cannot_change_or_remove_postings(statement):
    account(balance_minor=10_00)
    before = list(Posting.objects.order_by("id").values_list("id", "amount_minor", "balance_after_minor"))
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # TRUNCATE refuses to run with deferred checks pending

    # Refused by the append-only trigger, or before it by the guard that keeps writes inside the functions.
    with (
        pytest.raises(DatabaseError, match=r"append-only|changes only through the ledger's functions"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)

    assert len(before) == 2
    assert list(Posting.objects.order_by("id").values_list("id", "amount_minor", "balance_after_minor")) == before


@pytest.mark.django_db
def test_postings_are_write_once_for_the_runtime_role():
    assert "ledger_posting" in write_once_tables("default")
    if settings.DATABASE_RUNTIME_ROLES["default"] == connection.settings_dict["USER"]:
        pytest.skip("single-role database: no separate runtime role to test")
    with psycopg.connect(database_url("default"), autocommit=True) as runtime, runtime.cursor() as cursor:
        cursor.execute(
            "SELECT has_table_privilege(current_user, 'ledger_posting', 'INSERT'),"
            " has_table_privilege(current_user, 'ledger_posting', 'UPDATE'),"
            " has_table_privilege(current_user, 'ledger_posting', 'DELETE'),"
            " has_table_privilege(current_user, 'ledger_posting', 'TRUNCATE'),"
            " has_table_privilege(current_user, 'ledger_posting', 'SELECT')"
        )
        assert cursor.fetchone() == (False, False, False, False, True)  # money moves through functions (ADR 0016)


# --- check constraints back the services ----------------------------------------------------------


@pytest.mark.django_db
def test_the_database_refuses_a_balance_below_the_credit_limit():
    deposit = account(balance_minor=10_00)
    line = account(kind="credit_line", credit_limit_minor=50_00)

    with pytest.raises(IntegrityError, match="ledger_account_available_within_limit"), as_ledger_definer():
        LedgerAccount.objects.filter(pk=deposit.pk).update(posted_minor=-1)
    with pytest.raises(IntegrityError, match="ledger_account_available_within_limit"), as_ledger_definer():
        LedgerAccount.objects.filter(pk=line.pk).update(posted_minor=-50_01)
    with pytest.raises(IntegrityError, match="ledger_account_available_within_limit"), as_ledger_definer():
        LedgerAccount.objects.filter(pk=deposit.pk).update(held_minor=10_01)
    with as_ledger_definer():
        LedgerAccount.objects.filter(pk=line.pk).update(posted_minor=-50_00)  # exactly the limit is fine


@pytest.mark.django_db
def test_the_database_refuses_inconsistent_accounts_and_holds():
    deposit = account()
    platform_account_get_or_create(purpose="fees", currency="EUR", actor=TEST_ACTOR)

    for change, constraint in [
        ({"credit_limit_minor": 1}, "ledger_account_credit_limit_only_credit_lines"),
        ({"currency": "XXX"}, "ledger_account_currency_known"),
        ({"held_minor": -1}, "ledger_account_held_gte_0"),
        ({"owner": None}, "ledger_account_platform_has_purpose_no_owner"),
    ]:
        with pytest.raises(IntegrityError, match=constraint), as_ledger_definer():
            LedgerAccount.objects.filter(pk=deposit.pk).update(**change)
    with pytest.raises(IntegrityError, match="ledger_platform_account_unique"), as_ledger_definer():
        LedgerAccount.objects.create(kind="platform", purpose="fees", currency="EUR")
    other = account()
    with pytest.raises(IntegrityError, match="ledger_hold_captured_lte_amount"), as_ledger_definer():
        Hold.objects.create(
            account=deposit,
            destination=other,
            currency="EUR",
            amount_minor=10,
            captured_minor=11,
            expires_at="2030-01-01T00:00:00Z",
        )


# --- locks -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_accounts_are_locked_in_one_statement_for_update_ordered_by_primary_key():
    first, second, third = account(), account(), account()

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        locked = accounts_lock([third.pk, first.pk, second.pk, first.pk])

    assert list(locked) == [first.pk, second.pk, third.pk]
    assert len(queries.captured_queries) == 1
    assert queries.captured_queries[0]["sql"].startswith("SELECT * FROM ledger_accounts_lock(")
    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = 'ledger_accounts_lock'")
        body = cursor.fetchone()[0]
    assert "WHERE id = ANY (p_ids) ORDER BY id FOR UPDATE" in body


@pytest.mark.django_db
def test_a_transfer_takes_each_lock_exactly_once_in_the_documented_order():
    """The whole transfer is one call: one row-lock statement, then the policy step's counter lock, then writes."""
    generous_limits()
    alice, bob = account(balance_minor=10_00), account()
    owner = alice.owner

    with CaptureQueriesContext(connection) as queries:
        transfer_create(
            from_public_id=alice.public_id,
            to_public_id=bob.public_id,
            amount_minor=1_00,
            currency="EUR",
            reference="x",
            initiated_by=owner,
            actor=TEST_ACTOR,
        )
    with connection.cursor() as cursor:
        cursor.execute("SELECT proname, prosrc FROM pg_proc WHERE proname LIKE 'ledger_%'")
        bodies = dict(cursor.fetchall())
    body, policy = bodies["ledger_transfer_create"], bodies["ledger_policy_check"]

    statements = [query["sql"] for query in queries.captured_queries if "SAVEPOINT" not in query["sql"]]
    assert len(statements) == 1
    assert "FROM ledger_transfer_create(" in statements[0]
    assert "pg_advisory" not in body + policy
    assert body.count("FOR UPDATE") == 1 and policy.count("FOR UPDATE") == 1
    row_lock = body.index("ORDER BY id FOR UPDATE")
    policy_step = body.index("ledger_policy_check(")
    first_update = body.index("UPDATE ledger_ledgeraccount")
    postings = body.index("INSERT INTO ledger_posting")
    assert row_lock < policy_step < first_update < postings
    assert policy.index("FROM ledger_spendcounter") < policy.rindex("FROM ledger_transferrule")  # rules loop


@pytest.mark.django_db(transaction=True)
def test_a_movement_waits_for_the_spend_counter_another_movement_of_the_owner_holds():
    """Two accounts of one owner: different row locks, one spend counter row, so the daily limit is exact."""
    generous_limits()
    owner = customer()
    first, second, bob = account(owner=owner, balance_minor=10_00), account(owner=owner, balance_minor=10_00), account()
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        try:
            with transaction.atomic():
                send(first, bob, 1_00)
                held.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    thread = threading.Thread(target=holder, daemon=True)
    thread.start()
    try:
        assert held.wait(timeout=30)
        with pytest.raises(DatabaseError) as refused, transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '200ms'")
            send(second, bob, 1_00)
    finally:
        release.set()
        thread.join(timeout=30)

    assert sqlstate_of(refused.value) == "55P03"  # lock_not_available: it queued behind the holder's counter row
    assert Transfer.objects.filter(kind="transfer").count() == 1


@pytest.mark.django_db
def test_locking_unknown_rows_raises_not_found():
    with transaction.atomic(), pytest.raises(AccountNotFound):
        accounts_lock([2**40])


@pytest.mark.django_db(transaction=True)
def test_locks_outside_a_transaction_are_refused():
    alice = account()

    for lock, ids in [(accounts_lock, [alice.pk]), (holds_lock, [1]), (transfers_lock, [1])]:
        with pytest.raises(LockOutsideTransaction):
            lock(ids)
