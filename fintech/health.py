"""Liveness and readiness.

/healthz says the process answers; it touches nothing else, so a slow database
never gets healthy web processes killed. /readyz checks every dependency a
request may need and names each one that is down, so a load balancer stops
sending traffic and an operator knows where to look.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from fintech.celery import app as celery_app
from fintech.redis_client import get_redis
from fintech.tasks import heartbeat_key

# One small pool per process: a hung dependency occupies at most these threads.
_pool = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="readiness")


def _database(alias: str) -> Callable[[], None]:
    def check() -> None:
        try:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT 1")
        finally:
            # The check runs on a pool thread; never leave its connection open.
            connections[alias].close()

    return check


def _redis() -> None:
    get_redis().ping()


def _broker() -> None:
    with celery_app.connection_for_write(url=settings.CELERY_BROKER_URL) as connection:
        connection.ensure_connection(
            max_retries=1, interval_start=0, interval_step=0, timeout=settings.HEALTH_CHECK_TIMEOUT_SECONDS
        )
        connection.default_channel  # noqa: B018 - opening a channel proves the broker answers


def dependency_checks() -> dict[str, Callable[[], None]]:
    """Every database this process holds; Redis and the broker except in the vault role, which uses neither."""
    checks: dict[str, Callable[[], None]] = {f"database_{alias}": _database(alias) for alias in settings.DATABASES}
    if settings.SERVICE_ROLE != "vault":
        checks |= {"redis": _redis, "celery_broker": _broker}
    return checks


def check_dependencies() -> dict[str, dict]:
    """Run every check in parallel, each bounded by HEALTH_CHECK_TIMEOUT_SECONDS."""
    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    started = time.monotonic()
    futures = {name: _pool.submit(check) for name, check in dependency_checks().items()}
    results: dict[str, dict] = {}
    for name, future in futures.items():
        remaining = max(0.0, timeout - (time.monotonic() - started))
        try:
            future.result(timeout=remaining)
            results[name] = {"status": "up"}
        except concurrent.futures.TimeoutError:
            results[name] = {"status": "down", "error": "timeout"}
        except Exception as exc:  # any failure is "down"; the class name says which kind
            results[name] = {"status": "down", "error": type(exc).__name__}
    return results


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "alive"})


def worker_heartbeat_age_seconds() -> float | None:
    """Seconds since a Celery worker last ran the heartbeat task; None if never or unknown.

    Informational only: the web tier serves without workers (work waits in the
    outbox and the broker), so a stale worker does not make /readyz fail.
    """
    try:
        last = get_redis().hget(heartbeat_key(), "at")
    except Exception:
        return None
    return round(time.time() - float(last), 1) if last else None


@never_cache
@require_GET
def readyz(request):
    results = check_dependencies()
    down = sorted(name for name, result in results.items() if result["status"] != "up")
    body = {
        "status": "ready" if not down else "unavailable",
        "down": down,
        "checks": results,
    }
    if settings.SERVICE_ROLE != "vault":
        body["celery_worker_heartbeat_age_seconds"] = worker_heartbeat_age_seconds()
    return JsonResponse(body, status=200 if not down else 503)
