"""The audit trail: an append-only event table, sealed into signed checkpoints.

Every table here is write-once: the database refuses UPDATE, DELETE and
TRUNCATE (triggers, see migrations) and the runtime role holds only INSERT and
SELECT (fintech/db_privileges.py). Nothing here has a foreign key to a user or
content type, so deleting either never cascades into the trail.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now

CURRENT_TRANSACTION_ID = models.Func(
    template="pg_current_xact_id()::text::bigint", output_field=models.BigIntegerField()
)


class AuditEvent(models.Model):
    """One thing that happened: who, what, when, on what grounds, from where, with what outcome.

    Covers PCI DSS v4.0 10.2.2: user identification (actor_*), event type,
    date and time (occurred_at), success or failure (outcome), origination
    (source_ip, request_id, user_agent) and the affected data or resource
    (object_type, object_id). `payload` is masked before it is written.
    """

    class Outcome(models.TextChoices):
        SUCCESS = "success", "Success"
        FAILURE = "failure", "Failure"
        DENIED = "denied", "Denied"

    id = models.BigAutoField(primary_key=True, verbose_name="sequence number")
    occurred_at = models.DateTimeField(db_default=Now(), db_index=True)
    event_type = models.CharField(max_length=64, db_index=False)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    actor_user = models.CharField(max_length=64, blank=True, db_index=False, help_text="public id of the user")
    actor_client = models.CharField(max_length=128, blank=True, db_index=True, help_text="OAuth client id")
    actor_staff = models.CharField(max_length=64, blank=True, db_index=False, help_text="staff member's public id")
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=128, blank=True)
    purpose = models.CharField(max_length=200, blank=True, help_text="legal ground for a PII read")
    request_id = models.CharField(max_length=128, blank=True, db_index=False)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=256, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    # The inserting transaction, so the sealer knows when no earlier writer can still commit.
    xact_id = models.BigIntegerField(db_default=CURRENT_TRANSACTION_ID, editable=False)

    class Meta:
        permissions = [("unmask_pii", "Can unmask PII shown in audit views, with a recorded reason")]
        # Exact-match lookups only (admin filters and `=` search), so plain btrees: a db_index=True CharField
        # would also get a varchar_pattern_ops twin that only a LIKE 'prefix%' query uses, paid on every INSERT.
        # actor_client keeps db_index=True: the admin's actor filter does `startswith="system:"` on it.
        indexes = [
            models.Index(fields=["event_type"], name="audit_event_type_idx"),
            models.Index(fields=["actor_user"], name="audit_event_actor_user_idx"),
            models.Index(fields=["actor_staff"], name="audit_event_actor_staff_idx"),
            models.Index(fields=["request_id"], name="audit_event_request_id_idx"),
            models.Index(fields=["object_type", "object_id"], name="audit_event_object_idx"),
            models.Index(fields=["xact_id"], name="audit_event_xact_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(outcome__in=["success", "failure", "denied"]), name="audit_event_outcome_valid"
            ),
            models.CheckConstraint(
                condition=~models.Q(event_type="pii.read") | ~models.Q(purpose=""), name="audit_pii_read_has_purpose"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.id} {self.event_type} {self.outcome}"


class AuditSigningKey(models.Model):
    """Public half of a checkpoint signing key; the private half never enters the database."""

    key_id = models.CharField(max_length=32, primary_key=True)
    public_key = models.BinaryField(max_length=32)
    created_at = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return f"signing key {self.key_id}"


class AuditCheckpoint(models.Model):
    """A signed Merkle root over one batch of events, chained to the previous checkpoint.

    A batch is the set of events that were committed and unsealed when the
    sealer ran: usually a contiguous id range, but a row from a long transaction
    lands in a later batch than rows with higher ids.
    """

    id = models.BigAutoField(primary_key=True)
    sealed_at = models.DateTimeField()
    first_event_id = models.BigIntegerField()
    last_event_id = models.BigIntegerField()
    event_count = models.PositiveIntegerField()
    merkle_root = models.CharField(max_length=64)
    previous_hash = models.CharField(max_length=64)
    checkpoint_hash = models.CharField(max_length=64, unique=True)
    signature = models.BinaryField(max_length=64)
    signing_key = models.ForeignKey(AuditSigningKey, on_delete=models.PROTECT, db_column="key_id")
    # Every transaction id below this had finished and its events were sealed by now.
    drained_below_xact_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(event_count__gt=0), name="audit_checkpoint_not_empty"),
            models.CheckConstraint(
                condition=models.Q(first_event_id__lte=models.F("last_event_id")), name="audit_checkpoint_range"
            ),
        ]

    def __str__(self) -> str:
        return f"checkpoint {self.id} ({self.first_event_id}-{self.last_event_id})"


class AuditSeal(models.Model):
    """Which checkpoint sealed an event, and the event's leaf hash at that moment.

    A plain id, not a foreign key: purging an exported event leaves its seal,
    so the checkpoint's root can still be recomputed from the stored leaves.
    """

    event_id = models.BigIntegerField(primary_key=True)
    checkpoint = models.ForeignKey(AuditCheckpoint, on_delete=models.PROTECT, related_name="seals")
    leaf_hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"seal of event {self.event_id}"


class AuditArchive(models.Model):
    """A WORM export file: which checkpoints it holds and its digest."""

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(db_default=Now())
    file_name = models.CharField(max_length=255, unique=True)
    sha256 = models.CharField(max_length=64)
    first_checkpoint_id = models.BigIntegerField()
    last_checkpoint_id = models.BigIntegerField()
    event_count = models.PositiveIntegerField()
    created_by = models.CharField(max_length=128)

    def __str__(self) -> str:
        return self.file_name


class AuditVerification(models.Model):
    """The outcome of one verification run, shown on the checkpoint page."""

    id = models.BigAutoField(primary_key=True)
    verified_at = models.DateTimeField(db_default=Now())
    passed = models.BooleanField()
    checkpoints_checked = models.PositiveIntegerField()
    events_checked = models.PositiveBigIntegerField()
    first_bad_event_id = models.BigIntegerField(null=True, blank=True)
    detail = models.TextField(blank=True)
    # Signed by the sealer with the audit signing key ("key id:base64 signature", audit.services.verification):
    # a "passed" row written by anyone else is shown as forged, never as the latest result (issue 12). Rows from
    # before the signature carry only `result_mac`, an HMAC under the Django secret; both are checked as written.
    result_mac = models.CharField(max_length=64, default="", editable=False)
    result_signature = models.CharField(max_length=200, default="", editable=False)

    def __str__(self) -> str:
        return f"verification {self.id}: {'passed' if self.passed else 'FAILED'}"
