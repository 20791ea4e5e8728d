"""Limits and rules as data: what a customer may send, decided by rows staff maintain (ADR 0014)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from fintech.free_text import validate_free_text
from ledger.currencies import CURRENCY_CODES
from ledger.models.base import CUSTOMER_TIERS, RULE_WINDOW_MAX_MINUTES
from ledger.models.base import currency_known as _currency_known


class TransferLimit(models.Model):
    """How much a customer of a tier may send in one currency: per movement and per business day.

    The business day is a calendar day in LEDGER_LIMIT_TIME_ZONE. A tier and
    currency without a row cannot send at all (fail closed).
    """

    tier = models.CharField(max_length=16)
    currency = models.CharField(max_length=3)
    per_transfer_max_minor = models.BigIntegerField()
    daily_outgoing_max_minor = models.BigIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tier", "currency"], name="ledger_limit_tier_currency_uniq"),
            models.CheckConstraint(condition=Q(tier__in=CUSTOMER_TIERS), name="ledger_limit_tier_valid"),
            _currency_known("ledger_limit"),
            models.CheckConstraint(condition=Q(per_transfer_max_minor__gt=0), name="ledger_limit_per_transfer_gt_0"),
            models.CheckConstraint(
                condition=Q(daily_outgoing_max_minor__gte=F("per_transfer_max_minor")),
                name="ledger_limit_daily_gte_per_transfer",
            ),
        ]

    def __str__(self) -> str:
        return f"limit {self.tier} {self.currency}"


class TransferRule(models.Model):
    """A risk rule as data, evaluated by the policy step for every outgoing movement (ADR 0014).

    review_threshold: an amount at or above `threshold_minor` (in `currency`)
    hits; every currency a customer can send in needs an active one (fail
    closed). velocity: more than `max_count` outgoing movements by the same
    owner within `window_minutes` (in `currency`, or any if blank) hits.
    On a hit, `refuse` refuses; `flag` posts and opens a review case;
    `hold_for_review` holds the money and posts nothing until a compliance
    officer approves. Blocked customers need no rule: the policy refuses them.
    """

    class Kind(models.TextChoices):
        REVIEW_THRESHOLD = "review_threshold", "Review threshold"
        VELOCITY = "velocity", "Velocity"

    class Action(models.TextChoices):
        FLAG = "flag", "Flag for review (posts)"
        HOLD_FOR_REVIEW = "hold_for_review", "Hold for review (posts after approval)"
        REFUSE = "refuse", "Refuse"

    # Shown to compliance officers and copied into review cases: never a card number.
    name = models.CharField(max_length=100, unique=True, validators=[validate_free_text])
    kind = models.CharField(max_length=32, choices=Kind.choices)
    currency = models.CharField(max_length=3, blank=True, help_text="blank: any currency")
    threshold_minor = models.BigIntegerField(null=True, blank=True)
    max_count = models.PositiveIntegerField(null=True, blank=True)
    window_minutes = models.PositiveIntegerField(null=True, blank=True)
    action = models.CharField(max_length=16, choices=Action.choices)
    active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["review_threshold", "velocity"]), name="ledger_rule_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(action__in=["flag", "hold_for_review", "refuse"]), name="ledger_rule_action_valid"
            ),
            models.CheckConstraint(
                condition=Q(currency="") | Q(currency__in=CURRENCY_CODES), name="ledger_rule_currency_known"
            ),
            # A threshold means nothing without its currency (1000 is 10.00 EUR but 1000 JPY).
            models.CheckConstraint(
                condition=~Q(kind="review_threshold") | (Q(threshold_minor__gt=0) & ~Q(currency="")),
                name="ledger_rule_threshold_complete",
            ),
            models.CheckConstraint(
                condition=~Q(kind="velocity")
                | Q(max_count__gt=0, window_minutes__gt=0, window_minutes__lte=RULE_WINDOW_MAX_MINUTES),
                name="ledger_rule_velocity_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"rule {self.name}"


class SpendCounter(models.Model):
    """What one owner has sent in one currency on one business day: the daily limit's running total.

    Written by `ledger_policy_apply` (ledger/sql/policy.sql) in the movement's
    own transaction, under this row's lock, so the limit costs one row however
    many movements the day already had, and stays exact under concurrency.
    A hold reserves its amount here when it is created and gives back what it
    did not capture, on the day it was reserved, when it is voided or expires.
    `ledger_verify` recomputes every row from the transfers and holds.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3)
    business_day = models.DateField()
    outgoing_minor = models.BigIntegerField(default=0)
    movements = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "currency", "business_day"], name="ledger_spend_counter_uniq"),
            _currency_known("ledger_spend_counter"),
            models.CheckConstraint(condition=Q(outgoing_minor__gte=0), name="ledger_spend_counter_outgoing_gte_0"),
            models.CheckConstraint(condition=Q(movements__gte=0), name="ledger_spend_counter_movements_gte_0"),
        ]

    def __str__(self) -> str:
        return f"spend counter {self.currency} {self.business_day}"


class VelocityBucket(models.Model):
    """How many outgoing movements one owner started in one currency in one clock minute.

    Velocity rules sum the buckets of their window (at most
    RULE_WINDOW_MAX_MINUTES rows), never the postings. Buckets older than the
    longest window are pruned by a beat task.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3)
    minute = models.DateTimeField()
    movements = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "currency", "minute"], name="ledger_velocity_bucket_uniq"),
            _currency_known("ledger_velocity_bucket"),
            models.CheckConstraint(condition=Q(movements__gt=0), name="ledger_velocity_bucket_movements_gt_0"),
        ]

    def __str__(self) -> str:
        return f"velocity bucket {self.currency} {self.minute}"
