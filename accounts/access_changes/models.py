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

    def __str__(self) -> str:
        return f"alert for audit event {self.event_id}"
