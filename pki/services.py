"""Writes of the platform CA: issue, renew, revoke, record a certificate we only watch, publish the CRL.

Every function that signs calls `pki.ca.issuing_ca_load`, which refuses in
any process but the worker consuming the `cert` queue; the commands reach
these through `pki.tasks`. Each change and its audit event (`pki.certificate_*`,
naming the operator, or the system job for the daily renewal) commit in one
transaction. Status changes happen under a row lock, so two workers renewing
the same certificate produce one renewal, and a revocation cannot race one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services.events import Actor, audit_event_record
from fintech.key_files import file_replace
from pki import ca
from pki.exceptions import (
    CertificateNotActive,
    CertificateNotFound,
    CertificateNotOurs,
    RevocationReasonUnknown,
    ValidityRefused,
)
from pki.models import REVOCATION_REASONS, Certificate, CrlPublication
from pki.terminator import plain_name

CRL_VALIDITY = dt.timedelta(days=7)
SERVICE_MAX_LENGTH = 100
OBJECT_TYPE = "pki.certificate"


def operator_actor(operator: Any | None, *, job: str) -> Actor:
    """The staff member acting, or the scheduled job when nobody is (the daily renewal)."""
    return Actor(staff=str(operator.public_id)) if operator is not None else Actor.system(job)


def _certificate_event(
    event_type: str, row: Certificate, operator: Any | None, payload: dict[str, Any], *, job: str = "pki"
) -> None:
    """A `pki.certificate_*` event about `row`, naming the operator (or the scheduled job): one shape for all."""
    audit_event_record(
        event_type=event_type,
        outcome=AuditEvent.Outcome.SUCCESS,
        actor=operator_actor(operator, job=job),
        object_type=OBJECT_TYPE,
        object_id=row.serial,
        payload=payload,
    )


def _record_row(*, certificate: x509.Certificate, service: str, kind: str, issued_by: Any | None) -> Certificate:
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = sans.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:  # an external certificate may name itself by CN alone
        dns_names = []
    common_names = certificate.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    return Certificate.objects.create(
        service=service,
        subject_cn=str(common_names[0].value) if common_names else "",
        sans=dns_names,
        serial=ca.serial_hex(certificate),
        fingerprint_sha256=ca.fingerprint_sha256(certificate),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        kind=kind,
        certificate_pem=ca.certificate_pem(certificate),
        issued_by=issued_by,
    )


def _service_check(service: str) -> str:
    service = service.strip()
    if not service or len(service) > SERVICE_MAX_LENGTH or not plain_name(service):
        raise ValidityRefused(f"service must be 1-{SERVICE_MAX_LENGTH} letters, digits, '-' or '_'")
    return service


def certificate_issue(
    *, service: str, sans: list[str], days: int, operator: Any | None, now: dt.datetime | None = None
) -> tuple[Certificate, bytes]:
    """A new key pair and certificate for `service`: (the row, the private key PEM — returned once, never stored)."""
    now = now or timezone.now()
    service = _service_check(service)
    if not 1 <= days <= settings.PKI_MAX_DAYS:
        raise ValidityRefused(f"--days must be between 1 and {settings.PKI_MAX_DAYS}")
    issuing = ca.issuing_ca_load(now=now)
    key = ca.leaf_key_generate()
    certificate = ca.leaf_sign(
        ca=issuing,
        public_key=key.public_key(),
        service=service,
        sans=sans,
        not_before=now - ca.BACKDATE,
        not_after=now + dt.timedelta(days=days),
    )
    with transaction.atomic(durable=True):
        row = _record_row(certificate=certificate, service=service, kind=Certificate.Kind.ISSUED, issued_by=operator)
        _certificate_event(
            "pki.certificate_issued",
            row,
            operator,
            {
                "service": service,
                "sans": row.sans,
                "fingerprint_sha256": row.fingerprint_sha256,
                "not_after": row.not_after.isoformat(),
            },
        )
    return row, ca.leaf_key_pem(key)


def certificate_renew(
    *, serial: str, operator: Any | None, now: dt.datetime | None = None, skip_locked: bool = False
) -> Certificate | None:
    """A new certificate for the same key, service and names, valid as long as the old one was, from now.

    The validity overlaps the old certificate's, which is marked superseded
    (it stays valid until its own not-after, so a service that has not picked
    up the new one keeps working). The key pair is kept: renewal re-certifies,
    it never moves a private key; rotating a key is a new `cert_issue`.
    With `skip_locked` (the daily job) a row another worker holds, or one no
    longer active, is skipped (None) instead of waited for or refused: that
    is what makes racing renewals produce exactly one.
    """
    now = now or timezone.now()
    issuing = ca.issuing_ca_load(now=now)
    with transaction.atomic(durable=True):
        old = (
            Certificate.objects.select_for_update(skip_locked=skip_locked)
            .filter(serial=ca.serial_normalise(serial))
            .first()
        )
        if old is None:
            if skip_locked:
                return None
            raise CertificateNotFound()
        if old.kind != Certificate.Kind.ISSUED:
            raise CertificateNotOurs()
        if old.status != Certificate.Status.ACTIVE:
            if skip_locked:
                return None
            raise CertificateNotActive(f"{old.serial} is {old.status}")
        previous = x509.load_pem_x509_certificate(old.certificate_pem.encode())
        certificate = ca.leaf_sign(
            ca=issuing,
            public_key=previous.public_key(),
            service=old.service,
            sans=list(old.sans),
            not_before=now - ca.BACKDATE,
            not_after=now - ca.BACKDATE + (old.not_after - old.not_before),
        )
        new = _record_row(certificate=certificate, service=old.service, kind=old.kind, issued_by=operator)
        old.status, old.replaced_by = Certificate.Status.SUPERSEDED, new
        old.save(update_fields=["status", "replaced_by"])
        _certificate_event(
            "pki.certificate_renewed",
            new,
            operator,
            {
                "service": new.service,
                "replaces": old.serial,
                "not_after": new.not_after.isoformat(),
                "fingerprint_sha256": new.fingerprint_sha256,
            },
            job="pki_renewal",
        )
    return new


def certificate_revoke(*, serial: str, reason: str, operator: Any, now: dt.datetime | None = None) -> Certificate:
    """Revoke a certificate the platform issued (active or superseded but still valid), then republish the CRL."""
    now = now or timezone.now()
    if reason not in REVOCATION_REASONS:
        raise RevocationReasonUnknown(f"one of {', '.join(REVOCATION_REASONS)}")
    with transaction.atomic(durable=True):
        row = Certificate.objects.select_for_update().filter(serial=ca.serial_normalise(serial)).first()
        if row is None:
            raise CertificateNotFound()
        if row.kind != Certificate.Kind.ISSUED:
            raise CertificateNotOurs()
        if row.status == Certificate.Status.REVOKED:
            raise CertificateNotActive(f"{row.serial} is already revoked")
        # The same key pair is in every certificate of its renewal chain: unless the reason is only that it was
        # superseded, an older or newer certificate of that key would still open every door the revoked one did.
        same_key = [] if reason == x509.ReasonFlags.superseded.value else _renewal_chain_of(row)
        for revoked in [row, *same_key]:
            if revoked.status == Certificate.Status.REVOKED or revoked.not_after <= now:
                continue
            revoked.status, revoked.revoked_at, revoked.revocation_reason = Certificate.Status.REVOKED, now, reason
            revoked.save(update_fields=["status", "revoked_at", "revocation_reason"])
            _certificate_event(
                "pki.certificate_revoked",
                revoked,
                operator,
                {
                    "service": revoked.service,
                    "reason": reason,
                    **({"same_key_as": row.serial} if revoked is not row else {}),
                },
            )
    crl_publish(now=now)
    return row


RENEWAL_CHAIN_LIMIT = 100


def _renewal_chain_of(row: Certificate) -> list[Certificate]:
    """The other certificates of `row`'s key: what it renewed (back) and what renewed it (forward), locked."""
    chain, seen = [], {row.pk}
    back = Certificate.objects.select_for_update().filter(replaced_by=row).first()
    while back is not None and back.pk not in seen and len(chain) < RENEWAL_CHAIN_LIMIT:
        chain.append(back)
        seen.add(back.pk)
        back = Certificate.objects.select_for_update().filter(replaced_by=back).first()
    forward_id = row.replaced_by_id
    while forward_id is not None and forward_id not in seen and len(chain) < RENEWAL_CHAIN_LIMIT:
        forward = Certificate.objects.select_for_update().get(pk=forward_id)
        chain.append(forward)
        seen.add(forward.pk)
        forward_id = forward.replaced_by_id
    return chain


def certificate_record(*, pem: str, service: str, kind: str, operator: Any | None) -> Certificate:
    """Watch a certificate the platform cannot renew (a partner's, the public server's): it gets expiry alerts."""
    if kind not in (Certificate.Kind.PARTNER, Certificate.Kind.EXTERNAL):
        raise ValidityRefused("only partner or external certificates are recorded; the CA's own are issued")
    certificate = x509.load_pem_x509_certificate(pem.encode())
    with transaction.atomic():  # also inside an approval's transaction (a partner's pinned certificate)
        existing = Certificate.objects.filter(fingerprint_sha256=ca.fingerprint_sha256(certificate)).first()
        if existing is not None:  # pinned again (another client, a re-registration): watched once
            if existing.status != Certificate.Status.ACTIVE and existing.kind == kind:
                Certificate.objects.filter(pk=existing.pk).update(
                    status=Certificate.Status.ACTIVE, revoked_at=None, revocation_reason="", replaced_by=None
                )
            return existing
        row = _record_row(certificate=certificate, service=_service_check(service), kind=kind, issued_by=None)
        _certificate_event(
            "pki.certificate_recorded",
            row,
            operator,
            {"service": row.service, "kind": kind, "not_after": row.not_after.isoformat()},
        )
    return row


def crl_publish(*, now: dt.datetime | None = None) -> CrlPublication:
    """Sign and write the CRL (7-day nextUpdate) of every unexpired revoked certificate the platform issued.

    One publisher at a time (a transaction-scoped advisory lock), so CRL
    numbers only grow and the file on disk is the newest row's.
    """
    now = now or timezone.now()
    issuing = ca.issuing_ca_load(now=now)
    with transaction.atomic(durable=True):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('pki.crl_publish'))")
        revoked = list(
            Certificate.objects.filter(
                kind=Certificate.Kind.ISSUED, status=Certificate.Status.REVOKED, not_after__gt=now
            ).values_list("serial", "revoked_at", "revocation_reason")
        )
        latest = CrlPublication.objects.order_by("-number").first()
        number = (latest.number + 1) if latest else 1
        next_update = now + CRL_VALIDITY
        crl = ca.crl_sign(
            ca=issuing,
            revoked=[(int(serial, 16), at, REVOCATION_REASONS[reason]) for serial, at, reason in revoked],
            number=number,
            now=now,
            next_update=next_update,
        )
        path, crl_pem = Path(settings.PKI_CRL_PATH), crl.public_bytes(serialization.Encoding.PEM)
        path.parent.mkdir(parents=True, exist_ok=True)
        file_replace(path, crl_pem, mode=0o644)  # public; nginx never reads half
        return CrlPublication.objects.create(
            number=number,
            this_update=now,
            next_update=next_update,
            revoked_count=len(revoked),
            sha256=hashlib.sha256(crl.public_bytes(serialization.Encoding.DER)).hexdigest(),
            path=str(path),
            crl_pem=crl_pem.decode(),
        )


def certificate_unwatch(*, fingerprint_sha256: str, operator: Any | None) -> None:
    """A partner's certificate no longer in use (its pin replaced or removed): no more expiry alerts for it.

    Recorded as revoked for `cessationOfOperation` (the platform never issued it, so no CRL names it)."""
    with transaction.atomic():
        row = (
            Certificate.objects.select_for_update()
            .filter(
                fingerprint_sha256=fingerprint_sha256, kind=Certificate.Kind.PARTNER, status=Certificate.Status.ACTIVE
            )
            .first()
        )
        if row is None:
            return
        row.status, row.revoked_at = Certificate.Status.REVOKED, timezone.now()
        row.revocation_reason = x509.ReasonFlags.cessation_of_operation.value
        row.save(update_fields=["status", "revoked_at", "revocation_reason"])
        _certificate_event("pki.certificate_unwatched", row, operator, {"service": row.service, "kind": row.kind})
