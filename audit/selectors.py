"""Reads of the audit domain."""

from __future__ import annotations

from audit.models import AuditCheckpoint


def drained_floor(*, using: str = "default") -> int:
    """Every transaction id below this had finished, and its events were sealed, by the last full pass."""
    return (
        AuditCheckpoint.objects.using(using)
        .filter(drained_below_xact_id__isnull=False)
        .order_by("-id")
        .values_list("drained_below_xact_id", flat=True)
        .first()
    ) or 0
