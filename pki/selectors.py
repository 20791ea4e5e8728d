"""Reads of the platform CA: certificates for the operator commands, the admin and the metrics.

Certificates are platform data (no customer owns one), so the scope is staff
holding the model's permissions, checked by the caller (command or admin);
every read here is bounded.
"""

from __future__ import annotations

import datetime as dt
import math

from django.db.models import QuerySet
from django.utils import timezone

from pki.models import Certificate, CrlPublication

LIST_LIMIT = 1000


def certificate_days_left(certificate: Certificate, *, now: dt.datetime | None = None) -> int:
    """Whole days until not-after, rounded down (negative once expired): what cert_list and the admin show."""
    seconds = (certificate.not_after - (now or timezone.now())).total_seconds()
    return math.floor(seconds / 86400)


def certificate_list(*, status: str | None = None, limit: int = LIST_LIMIT) -> QuerySet[Certificate]:
    """Certificates soonest to expire first, optionally of one status."""
    queryset = Certificate.objects.order_by("not_after", "id")
    if status:
        queryset = queryset.filter(status=status)
    return queryset[:limit]


def certificates_expiring(*, within: dt.timedelta, now: dt.datetime | None = None) -> QuerySet[Certificate]:
    """Active certificates whose not-after is within `within` from now (expired ones included)."""
    return Certificate.objects.filter(
        status=Certificate.Status.ACTIVE, not_after__lte=(now or timezone.now()) + within
    ).order_by("not_after", "id")[:LIST_LIMIT]


RENEWAL_CHAIN_LIMIT = 100


def certificate_newest_of(*, serial: str) -> Certificate | None:
    """What the certificate `serial` became through renewals (itself when never renewed); None when unknown.

    The terminator serves a certificate by serial and follows `replaced_by` to pick up the daily job's renewal
    (same key pair). Bounded: a chain longer than RENEWAL_CHAIN_LIMIT stops at the last row read.
    """
    row = Certificate.objects.filter(serial=serial.lower()).first()
    for _ in range(RENEWAL_CHAIN_LIMIT):
        if row is None or row.replaced_by_id is None:
            return row
        row = Certificate.objects.get(pk=row.replaced_by_id)
    return row


def crl_newest_pem() -> str:
    """The newest published CRL's PEM ("" when none is stored): the same on every host, unlike a local file."""
    return (
        CrlPublication.objects.exclude(crl_pem="").order_by("-number").values_list("crl_pem", flat=True).first() or ""
    )
