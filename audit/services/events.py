"""Recording audit events: the one door every app writes the trail through.

A write is a single INSERT on the caller's connection, inside the caller's
transaction when there is one, so a domain change and its audit record commit
or roll back together. Sealing happens later, off the request path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from audit.models import AuditEvent
from fintech.free_text import free_text_check
from fintech.redaction import scrub_mapping, scrub_text
from fintech.request_context import current_request_id

# Legal grounds a PII read may cite (GDPR art. 6 / PCI DSS need-to-know).
PII_PURPOSES = frozenset({
    "customer_request",
    "kyc_review",
    "fraud_investigation",
    "regulatory_request",
    "dispute_resolution",
    "compliance_review",
    "payment_processing",
})  # fmt: skip
MAX_USER_AGENT = 256


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: a user, an OAuth client acting for itself or for a user, or a staff member."""

    user: str = ""  # public id
    client: str = ""  # OAuth client id
    staff: str = ""  # staff member's public id

    @classmethod
    def from_request(cls, request: HttpRequest | None) -> Actor:
        if request is None:
            return cls()
        user = getattr(request, "user", None)
        auth = getattr(request, "auth", None)
        client = getattr(getattr(auth, "application", None), "client_id", "") if auth is not None else ""
        if user is None or not getattr(user, "is_authenticated", False):
            return cls(client=client)
        public_id = str(user.public_id)
        if user.is_staff and not client:
            return cls(staff=public_id)
        return cls(user=public_id, client=client)

    @classmethod
    def system(cls, name: str) -> Actor:
        """A scheduled job or command acting on its own behalf."""
        return cls(client=f"system:{name}")


def audit_event_record(
    *,
    event_type: str,
    outcome: str,
    actor: Actor,
    object_type: str = "",
    object_id: str = "",
    purpose: str = "",
    payload: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
    using: str = "default",
) -> AuditEvent:
    """Append one event. The payload is masked here, before it can reach the table."""
    row = audit_event_row(
        event_type=event_type,
        outcome=outcome,
        actor=actor,
        object_type=object_type,
        object_id=object_id,
        purpose=purpose,
        payload=payload,
        request=request,
    )
    return AuditEvent.objects.using(using).create(**row)


# The columns `audit_event_record` fills; occurred_at and xact_id are the database's defaults.
_INSERT_COLUMNS = (
    "event_type",
    "outcome",
    "actor_user",
    "actor_client",
    "actor_staff",
    "object_type",
    "object_id",
    "purpose",
    "request_id",
    "source_ip",
    "user_agent",
    "payload",
)
# Literal text (the column names above, written out); every value is a bound parameter.
AUDIT_EVENT_INSERT_SQL = (
    "INSERT INTO audit_auditevent (event_type, outcome, actor_user, actor_client, actor_staff, object_type,"
    " object_id, purpose, request_id, source_ip, user_agent, payload)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)"
)


def audit_event_insert_statement(
    *,
    event_type: str,
    outcome: str,
    actor: Actor,
    object_type: str = "",
    object_id: str = "",
    purpose: str = "",
    payload: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> tuple[str, list[Any]]:
    """The same event as `audit_event_record` writes, as one INSERT and its parameters, not sent.

    For a caller that sends it in the same round trip as its own statement
    (the idempotency record of a /v1 write carries the call's `api.call` row:
    fintech/idempotency.py). Same checks and the same masking as
    `audit_event_record`; every value is a bound parameter.
    """
    row = audit_event_row(
        event_type=event_type,
        outcome=outcome,
        actor=actor,
        object_type=object_type,
        object_id=object_id,
        purpose=purpose,
        payload=payload,
        request=request,
    )
    row["payload"] = json.dumps(row["payload"])
    return AUDIT_EVENT_INSERT_SQL, [row[column] for column in _INSERT_COLUMNS]


def audit_event_row(
    *,
    event_type: str,
    outcome: str,
    actor: Actor,
    object_type: str,
    object_id: str,
    purpose: str,
    payload: dict[str, Any] | None,
    request: HttpRequest | None,
) -> dict[str, Any]:
    """The row `audit_event_record` inserts, checked and masked: for writers that insert it themselves
    (the idempotency record's INSERT, the ledger's functions)."""
    if outcome not in AuditEvent.Outcome.values:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    if event_type == "pii.read" and purpose not in PII_PURPOSES:
        raise ValueError(f"a PII read needs one of the purposes {sorted(PII_PURPOSES)}, got {purpose!r}")
    request_id = getattr(request, "request_id", None) or current_request_id() or ""
    return {
        "event_type": event_type,
        "outcome": outcome,
        "actor_user": actor.user,
        "actor_client": actor.client,
        "actor_staff": actor.staff,
        "object_type": object_type,
        "object_id": str(object_id),
        "purpose": purpose,
        "request_id": request_id,
        "source_ip": getattr(request, "client_ip", None) or None,
        "user_agent": scrub_text(request.META.get("HTTP_USER_AGENT", ""))[:MAX_USER_AGENT] if request else "",
        "payload": scrub_mapping(payload or {}),
    }


def pii_read_record(
    *,
    actor: Actor,
    object_type: str,
    object_id: str,
    fields: list[str],
    purpose: str,
    request: HttpRequest | None = None,
    reason: str = "",
) -> AuditEvent:
    """Record that someone saw PII in clear. Without a valid purpose it is a programming error.

    The typed reason is kept in clear for years: one holding a card number is refused
    (`reference_contains_card_number`), and with it the read, since the record comes first.
    """
    free_text_check(reason, field="reason")
    return audit_event_record(
        event_type="pii.read",
        outcome=AuditEvent.Outcome.SUCCESS,
        actor=actor,
        object_type=object_type,
        object_id=object_id,
        purpose=purpose,
        payload={"fields": sorted(fields), "reason": reason},
        request=request,
    )
