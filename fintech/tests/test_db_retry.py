"""run_with_retry: a real deadlock and a real serialization failure are retried; anything else is not."""

from __future__ import annotations

import threading

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from fintech.db_retry import run_with_retry, sqlstate_of
from ledger.tests.factories import account, customer


class FakeDriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def database_error(sqlstate: str) -> DatabaseError:
    error = DatabaseError(f"simulated {sqlstate}")
    error.__cause__ = FakeDriverError(sqlstate)
    return error


def flaky(failures: list[BaseException], result: str = "done"):
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return result

    return fn, calls


def test_retryable_errors_are_retried_with_bounded_jittered_backoff():
    sleeps: list[float] = []
    fn, calls = flaky([database_error("40P01"), database_error("40001")])

    assert run_with_retry(fn, attempts=3, sleep=sleeps.append) == "done"

    assert len(calls) == 3
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.02
    assert 0 <= sleeps[1] <= 0.04


def test_other_errors_are_raised_at_once():
    fn, calls = flaky([IntegrityError("duplicate key")])

    with pytest.raises(IntegrityError):
        run_with_retry(fn, attempts=3, sleep=lambda _: None)

    assert len(calls) == 1


def test_the_last_failure_is_raised_when_attempts_run_out():
    fn, calls = flaky([database_error("40P01") for _ in range(5)])

    with pytest.raises(DatabaseError) as error:
        run_with_retry(fn, attempts=2, sleep=lambda _: None)

    assert sqlstate_of(error.value) == "40P01"
    assert len(calls) == 2


def test_attempts_are_bounded():
    for attempts in (0, 11):
        with pytest.raises(ValueError):
            run_with_retry(lambda: None, attempts=attempts)


@pytest.mark.django_db
def test_retrying_inside_a_transaction_is_refused():
    with transaction.atomic(), pytest.raises(RuntimeError, match="outermost"):
        run_with_retry(lambda: None)


@pytest.mark.django_db
def test_the_test_cases_own_transaction_does_not_count():
    assert run_with_retry(lambda: 42) == 42


def _two_threads(first, second) -> None:
    errors: list[BaseException] = []

    def run(fn) -> None:
        try:
            fn()
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(fn,), daemon=True) for fn in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == [], errors


@pytest.mark.django_db(transaction=True)
def test_a_real_deadlock_is_retried_and_both_transactions_finish():
    """Two threads lock two rows in opposite order with plain SQL: PostgreSQL kills one, which then retries."""
    row_a, row_b = account().pk, account().pk
    both_hold_their_first_row = threading.Barrier(2)
    attempts: dict[str, int] = {"forward": 0, "backward": 0}
    seen_states: list[str] = []

    def locker(name: str, first: int, second: int):
        def transaction_body() -> None:
            attempts[name] += 1
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("SELECT id FROM ledger_ledgeraccount WHERE id = %s FOR UPDATE", [first])
                    if attempts[name] == 1:
                        both_hold_their_first_row.wait(timeout=10)
                    cursor.execute("SELECT id FROM ledger_ledgeraccount WHERE id = %s FOR UPDATE", [second])
            except DatabaseError as error:
                seen_states.append(sqlstate_of(error))
                raise

        return lambda: run_with_retry(transaction_body, attempts=3)

    _two_threads(locker("forward", row_a, row_b), locker("backward", row_b, row_a))

    assert seen_states == ["40P01"]
    assert sorted(attempts.values()) == [1, 2]


@pytest.mark.django_db(transaction=True)
def test_a_real_serialization_failure_is_retried():
    """Two REPEATABLE READ transactions update the same row: the second gets 40001 and succeeds on retry."""
    row = customer().customer_profile.pk
    both_have_a_snapshot = threading.Barrier(2)
    attempts: dict[str, int] = {"one": 0, "two": 0}
    seen_states: list[str] = []

    def updater(name: str):
        def transaction_body() -> None:
            attempts[name] += 1
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    cursor.execute("SELECT status FROM accounts_customerprofile WHERE id = %s", [row])
                    if attempts[name] == 1:
                        both_have_a_snapshot.wait(timeout=10)
                    cursor.execute("UPDATE accounts_customerprofile SET status = status WHERE id = %s", [row])
            except DatabaseError as error:
                seen_states.append(sqlstate_of(error))
                raise

        return lambda: run_with_retry(transaction_body, attempts=3)

    _two_threads(updater("one"), updater("two"))

    assert seen_states == ["40001"]
    assert sorted(attempts.values()) == [1, 2]
