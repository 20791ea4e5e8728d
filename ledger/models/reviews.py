"""Review cases: a decision a compliance officer owes on something a rule or a detector raised.

Built once for every kind of finding (ADR 0014): today the policy step opens
one for a movement a `flag` rule let through (the transfer is posted; the
case asks whether to act on it) and for one a `hold_for_review` rule held
(the money is held; the decision posts or releases it). Anomaly findings
reuse the same model, queue and escalation.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from ledger.models.base import ClockTimestamp
from ledger.models.base import currency_known as _currency_known
from ledger.models.money import Hold, Transfer

DECISION_REASON_MAX_LENGTH = 500


class ReviewCase(models.Model):
    """One decision owed: who it is about, why it was raised, who works on it, what was decided and why."""

    class Kind(models.TextChoices):
        FLAGGED_MOVEMENT = "flagged_movement", "Posted, flagged for review"
        HELD_MOVEMENT = "held_movement", "Held until reviewed"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    # What the case is about: the posted transfer (flag) or the review hold (held).
    transfer = models.OneToOneField(
        Transfer, null=True, blank=True, on_delete=models.PROTECT, related_name="review_case"
    )
    hold = models.OneToOneField(Hold, null=True, blank=True, on_delete=models.PROTECT, related_name="review_case")
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="the customer the case is about",
    )
    reasons = models.JSONField(default=list, help_text="names of the rules (or detectors) that raised it")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    opened_at = models.DateTimeField(db_default=ClockTimestamp())
    escalated_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.CharField(max_length=DECISION_REASON_MAX_LENGTH, blank=True)
    # HMAC-SHA256 (hex) of the decision by the application (ledger/authorization.py): a case decided by
    # writing its row has none, releases nothing, and `ledger_verify` names it.
    decision_mac = models.CharField(max_length=64, blank=True, db_default="", editable=False)

    class Meta:
        permissions = [("decide_reviewcase", "Can approve or reject a review case")]
        indexes = [
            models.Index(fields=["opened_at", "id"], condition=Q(status="open"), name="ledger_review_open_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["flagged_movement", "held_movement"]), name="ledger_review_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["open", "approved", "rejected"]), name="ledger_review_status_valid"
            ),
            _currency_known("ledger_review"),
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="ledger_review_amount_gt_0"),
            # A flagged case is about one posted transfer or one hold; a held case about its hold, and once
            # approved also about the transfer the approval posted.
            models.CheckConstraint(
                condition=Q(kind="flagged_movement", transfer__isnull=False, hold__isnull=True)
                | Q(kind="flagged_movement", transfer__isnull=True, hold__isnull=False)
                | Q(kind="held_movement", hold__isnull=False),
                name="ledger_review_subject_matches_kind",
            ),
            # A decision names the officer, when, and why; an open case has none.
            models.CheckConstraint(
                condition=Q(status="open", decided_by__isnull=True, decided_at__isnull=True, decision_reason="")
                | (~Q(status="open") & Q(decided_by__isnull=False, decided_at__isnull=False) & ~Q(decision_reason="")),
                name="ledger_review_decision_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"review case {self.public_id}"
