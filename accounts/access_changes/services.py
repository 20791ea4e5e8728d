"""Alerting on access changes the four-eyes service did not approve (the triggers only record them)."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction

from accounts.access_changes.authorization import approved_in_transaction
from accounts.access_changes.models import AccessChangeAlert
from audit.alerts import alert_raise
from audit.models import AuditEvent
from audit.services.events import Actor

EVENT_TYPE = "access.changed"
ALERT_KIND = "access.unapproved_change"
ALERT_ROLE = "security_admin"
MAX_ALERTS_PER_RUN = 200


def _change_summary(payload: dict[str, Any]) -> str:
    """What changed, from the trigger's payload: role, permission and flag names only, never a person's data."""
    change = str(payload.get("change", "change"))
    if "flags" in payload and isinstance(payload["flags"], dict):
        flags = ", ".join(
            f"{flag} {values.get('old')}->{values.get('new')}"
            for flag, values in sorted(payload["flags"].items())
            if isinstance(values, dict)
        )
        return f"{change} ({flags})"
    named = [str(payload[key]) for key in ("group", "permission") if payload.get(key)]
    return f"{change} {' '.join(named)}".strip()


def _unapproved(event: AuditEvent) -> bool:
    """Not approved, or "approved" in a transaction where the application did not apply that request to that
    person (issue 12): a setting set and a request row re-pointed with the database login alone prove nothing."""
    if not event.payload.get("approved"):
        return True
    if event.payload.get("via") == "roles_sync" and not event.payload.get("approval_request"):
        return False  # role definitions rewritten by the owner after migrate: the trigger checked the login
    return not approved_in_transaction(
        xact_id=event.xact_id,
        approval_public_id=str(event.payload.get("approval_request") or ""),
        subject_public_id=event.object_id if event.object_type == "accounts.user" else None,
    )


def access_changes_alert(*, limit: int = MAX_ALERTS_PER_RUN) -> int:
    """Raise one `access.unapproved_change` alert per `access.changed` event that no authentic request approved.

    Every event is looked at once: a marker row is written for each (its
    primary key is the event id), whether it alerts or not. An event marked
    approved needs the application's signed authorization of that request for
    that person in that very transaction (`AccessChangeAuthorization`). One transaction: the markers and
    the alerts (sealed event, outbox email) commit together or not at all, so a
    failed run alerts nothing and the next run retries. Exactly once under
    concurrent runs: `INSERT ... ON CONFLICT DO NOTHING RETURNING` on the
    marker's primary key hands each event to one run only (a racing run waits
    for the first to commit, then gets nothing back). Candidates are inserted
    in id order, so two runs never deadlock. Returns how many alerts were
    raised; a backlog drains over later runs.
    """
    with transaction.atomic():
        candidates = list(
            AuditEvent.objects.filter(event_type=EVENT_TYPE)
            .exclude(id__in=AccessChangeAlert.objects.values("event_id"))
            .order_by("id")
            .values_list("id", flat=True)[:limit]
        )
        if not candidates:
            return 0
        table = connection.ops.quote_name(AccessChangeAlert._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (event_id, alerted_at) SELECT id, now() FROM unnest(%s::bigint[]) AS id"  # noqa: S608  # nosec B608 - the model's own table name
                " ORDER BY id ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                [candidates],
            )
            claimed = sorted(row[0] for row in cursor.fetchall())
        alerted = 0
        for event in AuditEvent.objects.filter(id__in=claimed).order_by("id"):
            if not _unapproved(event):
                continue
            approved_claim = " (its approval is not authentic)" if event.payload.get("approved") else ""
            alert_raise(
                kind=ALERT_KIND,
                summary=(
                    f"Access of {event.object_type} {event.object_id} changed without an approved request"
                    f"{approved_claim}: {_change_summary(event.payload)} (audit event {event.id})"
                ),
                object_type=event.object_type,
                object_id=event.object_id,
                role=ALERT_ROLE,
                actor=Actor.system("access_changes_alert"),
            )
            alerted += 1
    return alerted
