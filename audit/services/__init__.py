"""Writes of the audit domain: recording events, sealing, archiving, verifying."""

from audit.services.events import Actor, audit_event_record, pii_read_record

__all__ = ["Actor", "audit_event_record", "pii_read_record"]
