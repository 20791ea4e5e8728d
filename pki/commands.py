"""What the cert_* commands share: asking the `cert` worker through the broker and waiting for its answer.

The commands run as ops (no issuing key), so they never sign in-process,
not even in dev where the console holds every key: the path a test takes is
the path production takes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from celery.exceptions import TimeoutError as CeleryTimeoutError
from django.conf import settings
from django.core.management.base import CommandError

from fintech.staff_grants import staff_grant_sign
from pki.ca import serial_normalise
from pki.exceptions import CertificateWorkerUnavailable
from pki.models import Certificate

GRANT_LIFETIME = timedelta(minutes=5)


def cert_grant(command: str, args: dict[str, Any], operator) -> str:
    """A staff grant (fintech/staff_grants.py) naming this command, its arguments and the authenticated operator.

    The cert worker signs only with one: a message on the broker alone (anyone who can write to Redis, a web
    host included) names nobody the worker believes. Signed here, by `ops`, which alone holds the signing key.
    """
    return staff_grant_sign({
        "grant_id": uuid.uuid4().hex, "command": command, "args": args, "operator": str(operator.public_id),
        "expires_at": (datetime.now(UTC) + GRANT_LIFETIME).isoformat(),
    })  # fmt: skip


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


def serial_known(text: str) -> str:
    """The serial as stored (pki.ca.serial_normalise), or a CommandError before anyone is asked for a second
    factor: which serials exist is no secret (cert_list shows them to anyone)."""
    serial = serial_normalise(text)
    if not Certificate.objects.filter(serial=serial).exists():
        raise CommandError(f"certificate_not_found: no certificate {serial} (cert_list shows them)")
    return serial
