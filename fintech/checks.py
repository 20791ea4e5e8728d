"""System checks for configuration invariants a reviewer would otherwise have to remember."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register


@register()
def audit_retention_check(app_configs, **kwargs):
    errors = []
    minimum = 7 * 365
    if getattr(settings, "AUDIT_RETENTION_DAYS", minimum) < minimum:
        errors.append(
            Error(
                f"AUDIT_RETENTION_DAYS must be at least {minimum} (7 years).",
                id="fintech.E001",
            )
        )
    return errors
