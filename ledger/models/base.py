"""Shared pieces of the ledger's models: limits of text fields, the database clock, the currency check."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from ledger.currencies import CURRENCY_CODES

REFERENCE_MAX_LENGTH = 140
CLIENT_ID_MAX_LENGTH = 100
RULE_WINDOW_MAX_MINUTES = 24 * 60
CUSTOMER_TIERS = ("standard", "premium", "business")  # accounts.CustomerProfile.Tier


class ClockTimestamp(models.Func):
    """`clock_timestamp()`: the wall clock at the moment the row is written, not at transaction start."""

    function = "clock_timestamp"
    output_field = models.DateTimeField()


def currency_known(prefix: str) -> models.CheckConstraint:
    return models.CheckConstraint(condition=Q(currency__in=CURRENCY_CODES), name=f"{prefix}_currency_known")
