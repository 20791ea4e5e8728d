"""The daily watch over certificates (issue 14 item 4): renew what we issued, alert on what we cannot.

Why here and not in the commands: beat runs these with no one at the
keyboard, so they must be safe to run twice at once (two workers, a redelivered
task) and safe to run every day forever:
* renewal picks candidates without a lock, then renews each under a
  `SKIP LOCKED` row lock that also re-checks "still active": two racing runs
  renew a certificate once;
* alerts for certificates the platform cannot renew (partner, external) fire
  at 30/14/7/1 days, once per threshold per certificate (a unique row per
  threshold, written with the alert in one transaction);
* the published CRL going stale (next_update within 2 days) alerts once per
  publication: an expired CRL makes a TLS terminator refuse every client.
Everything takes `now=` so tests move the clock instead of sleeping.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.alerts import alert_raise
from audit.services.events import Actor
from fintech.problems import DomainError
from pki.models import Certificate, CertificateExpiryAlert, CrlPublication
from pki.services import certificate_record, certificate_renew

logger = logging.getLogger(__name__)

ALERT_THRESHOLDS_DAYS = (30, 14, 7, 1)
CRL_STALE_WITHIN = dt.timedelta(days=2)
ALERT_ROLE = "security_admin"
BATCH_SIZE = 200


def certificates_renew_due(*, now: dt.datetime | None = None, batch_size: int = BATCH_SIZE) -> list[str]:
    """Renew active platform-issued certificates expiring within PKI_RENEW_WITHIN_DAYS; the new serials."""
    now = now or timezone.now()
    due = list(
        Certificate.objects.filter(
            kind=Certificate.Kind.ISSUED,
            status=Certificate.Status.ACTIVE,
            not_after__lte=now + dt.timedelta(days=settings.PKI_RENEW_WITHIN_DAYS),
        )
        .order_by("not_after", "id")
        .values_list("serial", flat=True)[:batch_size]
    )
    renewed = []
    for serial in due:
        try:
            new = certificate_renew(serial=serial, operator=None, now=now, skip_locked=True)
        except DomainError as error:  # e.g. names outside changed constraints: a person must look
            with transaction.atomic(durable=True):
                alert_raise(
                    kind="pki.renewal_failed",
                    summary=f"Certificate {serial} could not be renewed: {error.code}: {error.detail}",
                    object_type="pki.certificate",
                    object_id=serial,
                    role=ALERT_ROLE,
                    actor=Actor.system("pki_renewal"),
                )
            continue
        if new is not None:
            renewed.append(new.serial)
    if renewed:
        logger.info("pki: renewed certificates", extra={"count": len(renewed)})
    return renewed


def external_certificates_sync() -> int:
    """Record the certificate at each of PKI_EXTERNAL_CERTIFICATE_PATHS (the public server certificate, issued
    elsewhere and renewed by whoever owns it) when it is new; the one it replaces is marked superseded. Then the
    threshold alerts watch it like a partner's. A path that cannot be read is logged as an error on every run.
    Two runs racing record it once. Returns how many were recorded."""
    recorded = 0
    for path in settings.PKI_EXTERNAL_CERTIFICATE_PATHS:
        service = "external-" + "".join(c if c.isalnum() else "-" for c in Path(path).stem)[:80]
        try:
            pem = Path(path).read_bytes()
            leaf = x509.load_pem_x509_certificates(pem)[0]  # a chain file: the first is the server's own
        except (OSError, ValueError, IndexError) as error:
            logger.error("pki: external certificate unreadable", extra={"path": path, "error": str(error)})
            continue
        fingerprint = leaf.fingerprint(hashes.SHA256()).hex()
        if Certificate.objects.filter(fingerprint_sha256=fingerprint).exists():
            continue
        try:
            recorded += _external_record(leaf, service)
        except IntegrityError:  # a racing watch run recorded it first (the fingerprint is unique)
            continue
    return recorded


def _external_record(leaf: x509.Certificate, service: str) -> int:
    """Record `leaf` and supersede the service's previous one, in one transaction; 1 (one recorded)."""
    with transaction.atomic(durable=True):
        row = certificate_record(
            pem=leaf.public_bytes(serialization.Encoding.PEM).decode(), service=service,
            kind=Certificate.Kind.EXTERNAL, operator=None,
        )  # fmt: skip
        Certificate.objects.filter(
            kind=Certificate.Kind.EXTERNAL, service=service, status=Certificate.Status.ACTIVE
        ).exclude(pk=row.pk).update(status=Certificate.Status.SUPERSEDED)
    return 1


def _threshold(left: dt.timedelta) -> int | None:
    crossed = [days for days in ALERT_THRESHOLDS_DAYS if left <= dt.timedelta(days=days)]
    return min(crossed) if crossed else None


def certificates_alert_expiring(*, now: dt.datetime | None = None, batch_size: int = BATCH_SIZE) -> int:
    """Alert on partner/external certificates at the tightest threshold crossed, once each; how many raised."""
    now = now or timezone.now()
    candidates = list(
        Certificate.objects.filter(
            kind__in=(Certificate.Kind.PARTNER, Certificate.Kind.EXTERNAL),
            status=Certificate.Status.ACTIVE,
            not_after__lte=now + dt.timedelta(days=max(ALERT_THRESHOLDS_DAYS)),
        )
        .order_by("not_after", "id")
        .values_list("pk", flat=True)[:batch_size]
    )
    raised = 0
    for pk in candidates:
        with transaction.atomic(durable=True):
            row = Certificate.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
            if row is None:  # another run holds it: it alerts, not us
                continue
            left = row.not_after - now
            threshold = _threshold(left)
            if threshold is None or row.expiry_alerts.filter(threshold_days__lte=threshold).exists():
                continue
            CertificateExpiryAlert.objects.create(certificate=row, threshold_days=threshold, raised_at=now)
            when = "expired" if left.total_seconds() <= 0 else f"expires in {left.days} days"
            alert_raise(
                kind="pki.certificate_expiring",
                summary=(
                    f"{row.get_kind_display()} certificate {row.subject_cn} (service {row.service}, serial"
                    f" {row.serial}) {when} ({row.not_after.isoformat()}); the platform cannot renew it."
                ),
                object_type="pki.certificate",
                object_id=row.serial,
                role=ALERT_ROLE,
                actor=Actor.system("pki_expiry"),
            )
            raised += 1
    return raised


def crl_alert_stale(*, now: dt.datetime | None = None) -> bool:
    """Alert once when the newest CRL's next_update is within 2 days (daily publishing has stopped)."""
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        newest = CrlPublication.objects.order_by("-number").values_list("pk", flat=True).first()
        latest = CrlPublication.objects.select_for_update(skip_locked=True).filter(pk=newest).first()
        if latest is None or latest.stale_alerted_at is not None or latest.next_update - now > CRL_STALE_WITHIN:
            return False
        latest.stale_alerted_at = now
        latest.save(update_fields=["stale_alerted_at"])
        alert_raise(
            kind="pki.crl_expiring",
            summary=(
                f"The published CRL (number {latest.number}) expires at {latest.next_update.isoformat()}: a terminator"
                " holding an expired CRL refuses every client. Is pki.crl_publish running?"
            ),
            object_type="pki.crl",
            object_id=str(latest.number),
            role=ALERT_ROLE,
            actor=Actor.system("pki_expiry"),
        )
    return True
