"""Bounded retries of a whole transaction on deadlock or serialization failure.

With one lock order (see ledger/lock_objects.py) deadlocks should not happen;
this is the safety net, and it retries the whole unit of work, never a
statement inside a failed transaction.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import OperationalError

logger = logging.getLogger(__name__)
T = TypeVar("T")
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure


def _sqlstate(error: BaseException) -> str | None:
    cause = error.__cause__ or error
    return getattr(cause, "sqlstate", None) or getattr(getattr(cause, "diag", None), "sqlstate", None)


def run_with_retry(unit_of_work: Callable[[], T], *, attempts: int = 3, base_delay_seconds: float = 0.02) -> T:
    for attempt in range(1, attempts + 1):
        try:
            return unit_of_work()
        except OperationalError as error:
            if _sqlstate(error) not in RETRYABLE_SQLSTATES or attempt == attempts:
                raise
            logger.warning("transaction retried", extra={"sqlstate": _sqlstate(error), "attempt": attempt})
            time.sleep(base_delay_seconds * attempt * (1 + random.random()))  # noqa: S311 - jitter, not crypto
    raise AssertionError("unreachable")
