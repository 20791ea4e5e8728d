"""Which access changes have been looked at (and alerted if unapproved): one row per audit event, once each.

Imported by `accounts.models` so Django finds the model.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now


class AccessChangeAlert(models.Model):
    """An `access.changed` audit event the alert job has looked at: alerted if no authentic request approved it.

    The event id is the primary key: of two workers racing, the second one's
    INSERT waits for the first to commit and then conflicts, so it raises
    nothing. A plain id, not a foreign key, like the audit trail's own seals:
    an exported event may be purged, and its marker must not block that.
    Deleting a marker only means the event is alerted again.
    """

    event_id = models.BigIntegerField(primary_key=True)
    alerted_at = models.DateTimeField(db_default=Now())
    # MAC of the event id under the application's key: a marker the runtime login inserts to silence an
    # event has none, and the job looks at that event anyway (issue 12).
    mac = models.CharField(max_length=64, blank=True, db_default="")

    def __str__(self) -> str:
        return f"alert for audit event {self.event_id}"


class AccessChangeAuthorization(models.Model):
    """The application's word that this transaction applies this approved request to this person (issue 12).

    Written by `accounts.access_changes.authorization.approved_access_begin`
    together with the setting the access triggers read, and MACed under a key
    the database does not hold over (transaction id, request, subject). The
    alert job accepts an access change recorded as approved only with such a
    row of the same transaction, request and person: a setting set and a
    request row re-pointed with the database login alone prove nothing.
    """

    xact_id = models.BigIntegerField(db_index=True)
    approval_public_id = models.UUIDField()
    subject_id = models.BigIntegerField(null=True)
    mac = models.CharField(max_length=64)
    created_at = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return f"authorization of request {self.approval_public_id} in transaction {self.xact_id}"
