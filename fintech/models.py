"""Platform-wide records that belong to no single domain."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now


class IdempotencyRecord(models.Model):
    """The outcome of one state-changing call, stored in the same transaction as its effect.

    Scoped to the calling OAuth client and principal: two clients can never
    collide on a key, nor read each other's stored responses.
    """

    client_id = models.CharField(max_length=100)
    principal = models.CharField(max_length=64)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="sha256 of method, path and body")
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    # HMAC-SHA256 of the whole record under a key the database does not hold (fintech.idempotency): a response
    # rewritten with the database login alone no longer replays (issue 12).
    response_mac = models.CharField(max_length=64, default="", editable=False)
    created_at = models.DateTimeField(db_default=Now())
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client_id", "principal", "key"], name="idempotency_key_unique_per_caller"),
        ]

    def __str__(self) -> str:
        return f"idempotency record {self.pk}"
