"""Celery tasks of the platform CA. Those that sign are routed to the `cert` queue (CELERY_TASK_ROUTES).

Why tasks at all for a command: the issuing key lives in the cert worker alone
(fintech/process_keys.py); `cert_issue` and friends run as ops, which never
holds it, and ask the cert worker through the broker, waiting for the answer in
the result store. So these tasks return JSON answers (`{"error": code,
"detail": ...}` for a domain error, never a pickled exception), and the one
carrying a private key seals it to the caller's ephemeral key first
(`pki.key_transport`). The issue task is not acknowledged late: a worker lost
mid-task must not issue a second certificate nobody receives.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from celery import shared_task
from django.contrib.auth import get_user_model

from audit.models import AuditEvent
from audit.services.events import audit_event_record
from fintech.problems import DomainError
from fintech.redis_client import first_in_period, redis_key
from fintech.staff_grants import StaffGrantRefused, staff_grant_open
from pki import ca, expiry, key_transport, services
from pki.models import Certificate

ANSWER_TIME_LIMIT = {"time_limit": 60, "soft_time_limit": 50}


def _answer(grant: str, *, command: str, args: dict[str, Any], work: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """`work(operator)` once the grant names the operator; a refusal answers `{error, detail}` and is on the
    record (what was asked, by whom if the grant said): an attempt to issue for a name outside the CA is visible."""
    operator = None
    try:
        operator = _operator(grant, command=command, args=args)
        return work(operator)
    except DomainError as error:
        audit_event_record(
            event_type="pki.request_refused",
            outcome=AuditEvent.Outcome.FAILURE,
            actor=services.operator_actor(operator, job="pki"),
            object_type="pki.certificate",
            object_id=str(args.get("serial", "")),
            payload={"command": command, "code": error.code, "args": args},
        )
        return {"error": error.code, "detail": error.detail}


def _operator(grant: str, *, command: str, args: dict[str, Any]):
    """The operator a valid, unused grant from `ops` names (pki.commands.cert_grant); StaffGrantRefused otherwise.

    Used once: its id is remembered in Redis for longer than a grant lives."""
    payload = staff_grant_open(grant, command=command, args=args)
    if not first_in_period(redis_key("pki-grant", str(payload.get("grant_id", ""))), 3600):
        raise StaffGrantRefused("This grant was used already.")
    return get_user_model().objects.get(public_id=payload["operator"])


def _summary(row: Certificate) -> dict[str, Any]:
    return {
        "serial": row.serial,
        "fingerprint_sha256": row.fingerprint_sha256,
        "subject_cn": row.subject_cn,
        "sans": row.sans,
        "not_before": row.not_before.isoformat(),
        "not_after": row.not_after.isoformat(),
        "status": row.status,
        "certificate_pem": row.certificate_pem,
    }


def _now(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


@shared_task(name="pki.certificate_issue", ignore_result=False, acks_late=False, **ANSWER_TIME_LIMIT)
def certificate_issue(
    service: str, sans: list[str], days: int, grant: str, recipient_public_key: str
) -> dict[str, Any]:
    """Issue, and return the certificate with its private key sealed to the caller (never stored)."""

    def work(operator) -> dict[str, Any]:
        row, key_pem = services.certificate_issue(service=service, sans=sans, days=days, operator=operator)
        return {
            **_summary(row),
            "chain_pem": ca.chain_pem(),
            "sealed_key": key_transport.seal(key_pem, recipient_b64=recipient_public_key),
        }

    return _answer(grant, command="cert_issue", args={"service": service, "sans": sans, "days": days}, work=work)


@shared_task(name="pki.certificate_renew", ignore_result=False, **ANSWER_TIME_LIMIT)
def certificate_renew(serial: str, grant: str) -> dict[str, Any]:
    """An operator's renewal of one certificate (waits for a racing renewal, then refuses it as not active)."""

    def work(operator) -> dict[str, Any]:
        new = services.certificate_renew(serial=serial, operator=operator)
        return {**_summary(new), "replaces": serial, "chain_pem": ca.chain_pem()}

    return _answer(grant, command="cert_renew", args={"serial": serial}, work=work)


@shared_task(name="pki.certificate_revoke", ignore_result=False, **ANSWER_TIME_LIMIT)
def certificate_revoke(serial: str, reason: str, grant: str) -> dict[str, Any]:
    """Revoke and republish the CRL at once (the CRL is signed here, with the issuing key)."""

    def work(operator) -> dict[str, Any]:
        row = services.certificate_revoke(serial=serial, reason=reason, operator=operator)
        return {**_summary(row), "revoked_at": row.revoked_at.isoformat(), "reason": row.revocation_reason}

    return _answer(grant, command="cert_revoke", args={"serial": serial, "reason": reason}, work=work)


@shared_task(name="pki.crl_publish", ignore_result=True, time_limit=120, soft_time_limit=100)
def crl_publish(now: str | None = None) -> int:
    """Daily (beat): a fresh CRL valid 7 days, so a missed day or two never lets it expire."""
    return services.crl_publish(now=_now(now)).number


@shared_task(name="pki.certificates_renew_due", ignore_result=True, time_limit=600, soft_time_limit=550)
def certificates_renew_due(now: str | None = None) -> int:
    """Daily (beat): renew what the platform issued that expires within PKI_RENEW_WITHIN_DAYS."""
    return len(expiry.certificates_renew_due(now=_now(now)))


@shared_task(name="pki.certificates_watch_expiry", ignore_result=True, time_limit=120, soft_time_limit=100)
def certificates_watch_expiry(now: str | None = None) -> int:
    """Hourly (beat, default queue: needs no key): threshold alerts and the stale-CRL alert."""
    expiry.external_certificates_sync()
    raised = expiry.certificates_alert_expiring(now=_now(now))
    return raised + int(expiry.crl_alert_stale(now=_now(now)))
