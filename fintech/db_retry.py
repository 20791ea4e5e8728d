"""Run a whole transaction again when PostgreSQL aborted it for a deadlock or a serialization failure.

Both errors (SQLSTATE 40P01 and 40001) mean "nothing you did was kept; the
same work may succeed now": PostgreSQL picked this transaction as the victim.
Anything else is re-raised at once. Retrying only makes sense around the
outermost transaction (a savepoint cannot recover an aborted transaction), so
calling this inside `transaction.atomic()` is refused.

Attempts and delays are bounded; the delay grows exponentially with full
jitter so two victims of the same deadlock do not collide again in lockstep.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import DatabaseError, connections

logger = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure
MAX_ATTEMPTS = 10
BASE_DELAY_SECONDS = 0.02
MAX_DELAY_SECONDS = 0.5
_random = secrets.SystemRandom()


def sqlstate_of(error: BaseException) -> str | None:
    """The SQLSTATE of a database error, looking through Django's wrapper at the driver's error."""
    seen = 0
    current: BaseException | None = error
    while current is not None and seen < 5:
        state = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if state:
            return state
        current = current.__cause__
        seen += 1
    return None


def run_with_retry(
    fn: Callable[[], T],
    attempts: int = 3,
    *,
    using: str = "default",
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `fn` (which opens its own transaction) until it succeeds or `attempts` runs out."""
    if not 1 <= attempts <= MAX_ATTEMPTS:
        raise ValueError(f"attempts must be between 1 and {MAX_ATTEMPTS}")
    # Test cases wrap each test in atomic blocks of their own; only ours count.
    if any(not getattr(block, "_from_testcase", False) for block in connections[using].atomic_blocks):
        raise RuntimeError("run_with_retry must wrap the outermost transaction, not run inside one")
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except DatabaseError as error:
            state = sqlstate_of(error)
            if state not in RETRYABLE_SQLSTATES or attempt == attempts:
                raise
            delay = _random.uniform(0, min(MAX_DELAY_SECONDS, BASE_DELAY_SECONDS * 2 ** (attempt - 1)))
            logger.warning(
                "transaction aborted, retrying",
                extra={"sqlstate": state, "attempt": attempt, "delay_seconds": round(delay, 4)},
            )
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
