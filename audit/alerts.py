"""The platform's one alert service: something a person must look at, raised the same way everywhere.

An alert is (1) a sealed `alert.raised` audit event, (2) a Prometheus counter
`fintech_alerts_total{kind}`, and (3) a message to the staff role on duty,
through whatever channels higher layers register (`alert_channel_register`):
the ledger registers its transactional outbox, so the email commits with the
alert or not at all. The audit app sits below the ledger (layers point one
way), hence the registry instead of an import.

Callers raise inside the transaction of what they alert about; a summary
names ids and times, never a person's data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter

from audit.models import AuditEvent
from audit.services.events import Actor, audit_event_record

ALERTS = Counter("fintech_alerts_total", "Alerts raised for staff, by kind.", ["kind"])
SUMMARY_MAX_LENGTH = 300


@dataclass(frozen=True, slots=True)
class Alert:
    kind: str
    summary: str
    object_type: str
    object_id: str
    role: str


_channels: list[Callable[[Alert], None]] = []


def alert_channel_register(channel: Callable[[Alert], None]) -> None:
    """Add a delivery channel (called from an AppConfig.ready); registering twice is a no-op."""
    if channel not in _channels:
        _channels.append(channel)


def alert_raise(*, kind: str, summary: str, object_type: str, object_id: str, role: str, actor: Actor) -> Alert:
    """Raise one alert: sealed event, counter, and every registered channel, in the caller's transaction."""
    alert = Alert(
        kind=kind, summary=summary[:SUMMARY_MAX_LENGTH], object_type=object_type, object_id=object_id, role=role
    )
    audit_event_record(
        event_type="alert.raised",
        outcome=AuditEvent.Outcome.SUCCESS,
        actor=actor,
        object_type=object_type,
        object_id=object_id,
        payload={"kind": kind, "summary": alert.summary, "role": role},
    )
    for channel in _channels:
        channel(alert)
    ALERTS.labels(kind=kind).inc()
    return alert
