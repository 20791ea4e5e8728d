"""Helpers to write audit events in tests."""

from __future__ import annotations

from audit.services.events import Actor, audit_event_record


def record_event(n: int = 0, **overrides):
    fields = {
        "event_type": "api.call",
        "outcome": "success",
        "actor": Actor(user="00000000-0000-0000-0000-000000000001"),
        "object_type": "endpoint",
        "object_id": "/v1/test",
        "payload": {"n": n},
    }
    fields.update(overrides)
    return audit_event_record(**fields)
