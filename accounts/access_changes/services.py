"""Alerting on access changes the four-eyes service did not approve (the triggers only record them)."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction

from accounts.access_changes.authorization import approved_in_transaction
from accounts.access_changes.models import AccessChangeAlert
from audit.alerts import alert_raise
from audit.models import AuditEvent
from audit.services.events import Actor
from fintech.macs import row_mac_matches, row_mac_of

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


MARKER_SALT = "accounts.access_change.marker/1"


def _marker_mac(event_id: int) -> str:
    return row_mac_of(MARKER_SALT, [int(event_id)])


def _candidates(limit: int) -> list[int]:
    """Events without a genuine marker, oldest first. A marker the runtime login inserted to silence an event
    has no valid MAC, so it hides nothing (issue 12). Access changes are few: all are looked at each run."""
    rows = AuditEvent.objects.filter(event_type=EVENT_TYPE).order_by("id").values_list("id", flat=True)
    markers = dict(AccessChangeAlert.objects.values_list("event_id", "mac"))
    candidates = []
    for event_id in rows.iterator(chunk_size=2000):
        if not row_mac_matches(markers.get(event_id), MARKER_SALT, [event_id]):
            candidates.append(event_id)
            if len(candidates) >= limit:
                break
    return candidates


def access_changes_alert(*, limit: int = MAX_ALERTS_PER_RUN) -> int:
    """Raise one `access.unapproved_change` alert per `access.changed` event that no authentic request approved.

    Every event is looked at once: a marker row is written for each (its
    primary key is the event id, with a MAC under the application's key),
    whether it alerts or not. An event marked approved needs the application's
    signed authorization of that request for that person in that very
    transaction (`AccessChangeAuthorization`). One transaction: the markers and
    the alerts (sealed event, outbox email) commit together or not at all, so a
    failed run alerts nothing and the next run retries. Exactly once under
    concurrent runs: `INSERT ... ON CONFLICT` on the marker's primary key hands
    each event to one run only (a racing run waits for the first to commit,
    then finds the genuine marker and gets nothing back); a forged marker is
    overwritten and its event looked at. Candidates are inserted in id order,
    so two runs never deadlock. Returns how many alerts were raised; a
    backlog drains over later runs.
    """
    with transaction.atomic():
        candidates = _candidates(limit)
        if not candidates:
            return 0
        table = connection.ops.quote_name(AccessChangeAlert._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} AS m (event_id, alerted_at, mac)"  # noqa: S608  # nosec B608 - the model's own table
                " SELECT id, now(), mac FROM unnest(%s::bigint[], %s::text[]) AS c(id, mac) ORDER BY id"
                " ON CONFLICT (event_id) DO UPDATE SET mac = EXCLUDED.mac, alerted_at = EXCLUDED.alerted_at"
                " WHERE m.mac IS DISTINCT FROM EXCLUDED.mac RETURNING event_id",
                [candidates, [_marker_mac(event_id) for event_id in candidates]],
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
