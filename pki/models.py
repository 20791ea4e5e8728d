"""What the platform knows about certificates: each one it issued or watches, the CRLs it published.

A certificate row holds only public data (the PEM certificate, its serial and
fingerprint); the private key of an issued certificate is returned once to
whoever asked for it and never reaches the database. Rows change through
`pki.services` alone (status transitions under a row lock).
"""

from __future__ import annotations

from cryptography import x509
from django.conf import settings
from django.db import models

# RFC 5280 §5.3.1 reasons, as `cryptography` spells them (removeFromCRL is for delta CRLs only: not offered).
REVOCATION_REASONS: dict[str, x509.ReasonFlags] = {
    flag.value: flag for flag in x509.ReasonFlags if flag is not x509.ReasonFlags.remove_from_crl
}


class Certificate(models.Model):
    class Kind(models.TextChoices):
        ISSUED = "issued", "Issued by the platform CA"  # renewed automatically
        PARTNER = "partner", "A partner's"  # cannot renew: alert
        EXTERNAL = "external", "Issued elsewhere"  # e.g. the public server certificate: alert

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        REVOKED = "revoked", "Revoked"
        SUPERSEDED = "superseded", "Superseded by a renewal"

    RevocationReason = models.TextChoices("RevocationReason", [(reason, reason) for reason in REVOCATION_REASONS])

    service = models.CharField(max_length=100)
    subject_cn = models.CharField(max_length=253)
    sans = models.JSONField(default=list)
    serial = models.CharField(max_length=40, unique=True)  # lower-case hex, up to 159 bits
    fingerprint_sha256 = models.CharField(max_length=64, unique=True)  # of the DER certificate
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revocation_reason = models.CharField(max_length=30, choices=RevocationReason.choices, blank=True)
    replaced_by = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="replaces")
    certificate_pem = models.TextField()
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("not_after", "id")
        indexes = [models.Index(fields=("status", "not_after"))]
        permissions = [("manage_certificates", "Issue, renew and revoke platform certificates")]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(status="revoked", revoked_at__isnull=False) & ~models.Q(revocation_reason=""))
                | (~models.Q(status="revoked") & models.Q(revoked_at__isnull=True)),
                name="pki_certificate_revoked_has_time_and_reason",
            ),
            models.CheckConstraint(
                condition=models.Q(not_after__gt=models.F("not_before")), name="pki_certificate_validity_order"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject_cn} ({self.serial[:16]}…, {self.status})"


class CertificateExpiryAlert(models.Model):
    """One alert per threshold per certificate: the unique constraint is what makes it once."""

    certificate = models.ForeignKey(Certificate, on_delete=models.PROTECT, related_name="expiry_alerts")
    threshold_days = models.PositiveSmallIntegerField()
    raised_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("certificate", "threshold_days"), name="pki_one_alert_per_threshold")
        ]

    def __str__(self) -> str:
        return f"{self.threshold_days}-day alert for certificate {self.certificate_id}"


class CrlPublication(models.Model):
    """Each CRL the worker published: its number, validity and digest; the newest says when it goes stale."""

    number = models.PositiveBigIntegerField(unique=True)
    this_update = models.DateTimeField()
    next_update = models.DateTimeField()
    revoked_count = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)  # of the DER CRL
    path = models.CharField(max_length=500)
    # The CRL itself (public): terminators on any host read the newest from here, check its signature against
    # the intermediate and never go back to a lower number (pki/terminator_process.py).
    crl_pem = models.TextField(blank=True, default="")
    stale_alerted_at = models.DateTimeField(null=True, blank=True)  # "expires within 2 days" raised, once
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-number",)

    def __str__(self) -> str:
        return f"CRL {self.number} (next update {self.next_update.isoformat()})"
