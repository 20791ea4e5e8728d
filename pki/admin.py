"""Security admins' certificates page: every certificate with its days left, colour-coded; read-only.

Read-only for everyone, superusers included (fintech.admin.ReadOnlyModelAdmin):
issuing, renewing and revoking sign with the issuing key, which the web
process never holds, so they are commands run as ops (cert_issue, ...), not
buttons here. Seeing the page needs `pki.view_certificate`, which
accounts/roles.py gives the security_admin role.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from fintech.admin import ReadOnlyModelAdmin
from pki.models import Certificate
from pki.selectors import certificate_days_left

AMBER_WITHIN_DAYS = 30
RED_WITHIN_DAYS = 7
COLOURS = {"green": "#1a7f37", "amber": "#b26b00", "red": "#cf222e", "grey": "#6e7781"}


def days_left_colour(days: int) -> str:
    """red: 7 days or fewer (or expired); amber: within 30; green beyond."""
    if days <= RED_WITHIN_DAYS:
        return "red"
    if days <= AMBER_WITHIN_DAYS:
        return "amber"
    return "green"


@admin.register(Certificate)
class CertificateAdmin(ReadOnlyModelAdmin):
    list_display = ("subject_cn", "service", "kind", "status", "days_left", "not_after", "serial_short")
    list_filter = ("status", "kind")
    search_fields = ("service", "subject_cn", "serial", "fingerprint_sha256")
    ordering = ("not_after",)
    list_per_page = 100
    actions = None
    show_facets = admin.ShowFacets.NEVER
    readonly_fields = (
        "service", "subject_cn", "sans", "serial", "fingerprint_sha256", "not_before", "not_after", "kind",
        "status", "revoked_at", "revocation_reason", "replaced_by", "issued_by", "created_at", "certificate_pem",
    )  # fmt: skip

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.has_perm("pki.view_certificate")

    @admin.display(description="days left", ordering="not_after")
    def days_left(self, certificate: Certificate) -> str:
        days = certificate_days_left(certificate, now=timezone.now())
        if certificate.status != Certificate.Status.ACTIVE:  # revoked or superseded: its days left alarm nobody
            return format_html('<span class="pki-days-grey" style="color: {}">{} ({})</span>', COLOURS["grey"], days,
                               certificate.get_status_display().lower())  # fmt: skip
        colour = days_left_colour(days)
        return format_html('<strong class="pki-days-{}" style="color: {}">{}</strong>', colour, COLOURS[colour], days)

    @admin.display(description="serial")
    def serial_short(self, certificate: Certificate) -> str:
        return certificate.serial[:16] + "…"
