"""What the cert_* commands share: asking the `cert` worker through the broker and waiting for its answer.

The commands run as ops (no issuing key), so they never sign in-process,
not even in dev where the console holds every key: the path a test takes is
the path production takes.
"""

from __future__ import annotations

from typing import Any

from celery.exceptions import TimeoutError as CeleryTimeoutError
from django.conf import settings
from django.core.management.base import CommandError

from pki.exceptions import CertificateWorkerUnavailable


def cert_task_call(task, *args: Any) -> dict[str, Any]:
    """Send `task` to its queue and wait up to PKI_TASK_TIMEOUT_SECONDS; a domain error becomes a CommandError."""
    result = task.apply_async(args=args)
    try:
        answer = result.get(timeout=settings.PKI_TASK_TIMEOUT_SECONDS)
    except CeleryTimeoutError as error:
        unavailable = CertificateWorkerUnavailable(
            f"no answer within {settings.PKI_TASK_TIMEOUT_SECONDS}s on queue {settings.PKI_CERT_QUEUE!r}; the task"
            f" {result.id} may still run: check cert_list before retrying"
        )
        raise CommandError(f"{unavailable.code}: {unavailable.detail}") from error
    finally:
        result.forget()
    if "error" in answer:
        raise CommandError(f"{answer['error']}: {answer['detail']}")
    return answer
