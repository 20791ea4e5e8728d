"""Records every /v1 API call in the audit trail (seed 002's API-call fields).

Bodies are never stored: only a masked summary (field names and sizes, with
values scrubbed). A failure to record is logged and counted, never swallowed
silently, but does not turn a completed money movement into an error for the
client.

Where the row is written (ADR 0005): a state-changing call that goes through
`fintech.idempotency` has its `api.call` row sent in the same statement as its
idempotency record, inside the transaction of its effect (one round trip and
one commit fewer per write call). Every other call, and every call whose
transaction rolls back (409 while the key is in use, 422 for a reused key, an
unexpected error), is recorded here after the response is built, as its own
INSERT, exactly as before: a refused or failed call is never left unaudited.
If the response that leaves differs from what was recorded inside the
transaction (a later failure turned it into a 500), this middleware records
the response that left as well.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from rest_framework.renderers import JSONRenderer

from audit.context import bind_request, reset_request
from audit.models import AuditEvent
from audit.risk import assess_api_call
from audit.services.events import Actor, audit_event_insert_statement, audit_event_record
from fintech.json_documents import json_body_loads

logger = logging.getLogger(__name__)
API_PREFIX = "/v1/"
UNAUDITED_PATHS = ("/v1/schema", "/v1/docs")
MAX_SUMMARY_FIELDS = 50
SECURITY_EVENTS = {401: "auth.failed", 403: "permission.denied"}
# Set on the request by a layer that recorded its own, more precise security event for its refusal
# (`auth.invalid_api_key`): the generic one above would count the same refusal twice.
SECURITY_EVENT_RECORDED = "fintech_security_event_recorded"


def body_summary(content_type: str, body: bytes) -> dict:
    """Shape, never values: top-level field names of a JSON object and the size."""
    summary: dict = {"bytes": len(body)}
    if body and "json" in content_type:
        try:
            document = json_body_loads(body)
        except ValueError:
            summary["json"] = "invalid"
        else:
            summary.update(_document_shape(document))
    return summary


def _document_shape(document) -> dict:
    if isinstance(document, dict):
        return {"fields": sorted(str(key) for key in document)[:MAX_SUMMARY_FIELDS]}
    return {"json": type(document).__name__}


def _endpoint(request) -> str:
    match = getattr(request, "resolver_match", None)
    return f"/{match.route}" if match is not None and match.route else "unmatched"


def _outcome(status: int) -> str:
    if status < 400:
        return AuditEvent.Outcome.SUCCESS
    return AuditEvent.Outcome.DENIED if status in (401, 403) else AuditEvent.Outcome.FAILURE


def _api_call_payload(request, request_summary: dict, status: int, response_summary: dict, elapsed: float) -> dict:
    endpoint = _endpoint(request)
    risk_score, flags = assess_api_call(request=request, status=status, endpoint=endpoint)
    return {
        "method": request.method,
        "endpoint": endpoint,
        "status": status,
        "request": request_summary,
        "response": response_summary,
        "duration_ms": round(elapsed * 1000, 2),
        "risk_score": risk_score,
        "compliance_flags": flags,
    }


class PendingApiCall:
    """The `api.call` row of one request, until someone writes it (`request.api_call_audit`).

    `insert_statement` is what `fintech.idempotency` sends with its record;
    `recorded` is set only once that transaction has committed, so the
    middleware knows whether it still has to write the row itself.
    """

    __slots__ = ("recorded", "request", "request_summary", "started")

    def __init__(self, request, request_summary: dict, started: float):
        self.request = request
        self.request_summary = request_summary
        self.started = started
        self.recorded: tuple[int, int] | None = None  # (status, response bytes) as committed

    def insert_statement(self, *, status: int, body, renderer, media_type: str) -> tuple[str, list, int] | None:
        """The INSERT for a response about to be rendered by `renderer`, and its size; None to leave it to later.

        Only a plain JSON rendering can be sized before it happens; 401/403
        (which come with a second, security event) are left to the middleware.
        """
        if status in SECURITY_EVENTS or not isinstance(renderer, JSONRenderer):
            return None
        rendered_bytes = 0 if status == 204 else len(renderer.render(body, media_type, {}))
        response_summary = {"bytes": rendered_bytes}
        if rendered_bytes:
            response_summary.update(_document_shape(body))
        request = self.request
        sql, params = audit_event_insert_statement(
            event_type="api.call",
            outcome=_outcome(status),
            actor=Actor.from_request(request),
            object_type="endpoint",
            object_id=_endpoint(request),
            request=request,
            payload=_api_call_payload(
                request, self.request_summary, status, response_summary, time.perf_counter() - self.started
            ),
        )
        return sql, params, rendered_bytes

    def matches(self, response) -> bool:
        if self.recorded is None or getattr(response, "streaming", False):
            return False
        return self.recorded == (response.status_code, len(response.content))


class ApiCallAuditMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(API_PREFIX) or request.path.startswith(UNAUDITED_PATHS):
            return self.get_response(request)
        started = time.perf_counter()
        request_body = b""
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if declared.isdigit() and int(declared) <= settings.REQUEST_BODY_MAX_BYTES:
            try:
                request_body = request.body  # read now: the view's parser consumes the stream
            except Exception:  # unreadable: the response says so, the record says 0 bytes
                request_body = b""
        pending = PendingApiCall(request, body_summary(request.META.get("CONTENT_TYPE", ""), request_body), started)
        request.api_call_audit = pending
        response = self.get_response(request)
        if not pending.matches(response):
            self._record(request, pending, response, time.perf_counter() - started)
        return response

    def _record(self, request, pending: PendingApiCall, response, elapsed: float) -> None:
        status = response.status_code
        endpoint = _endpoint(request)
        response_body = getattr(response, "content", b"") if not getattr(response, "streaming", False) else b""
        try:
            audit_event_record(
                event_type="api.call",
                outcome=_outcome(status),
                actor=Actor.from_request(request),
                object_type="endpoint",
                object_id=endpoint,
                request=request,
                payload=_api_call_payload(
                    request,
                    pending.request_summary,
                    status,
                    body_summary(response.get("Content-Type", ""), response_body),
                    elapsed,
                ),
            )
            security_event = SECURITY_EVENTS.get(status)
            if security_event and not getattr(request, SECURITY_EVENT_RECORDED, False):
                audit_event_record(
                    event_type=security_event,
                    outcome=AuditEvent.Outcome.DENIED,
                    actor=Actor.from_request(request),
                    object_type="endpoint",
                    object_id=endpoint,
                    request=request,
                    payload={"method": request.method, "status": status},
                )
        except Exception:
            logger.exception("api call could not be recorded in the audit trail", extra={"endpoint": endpoint})


class AuditContextMiddleware:
    """Makes the current request known to model-change logging (django-auditlog).

    auditlog's own middleware reads the actor before DRF has authenticated the
    token (so API changes would have no actor) and takes the address from a
    client-supplied X-Forwarded-For. Instead the request is bound here and the
    actor and address are read when a change is logged (audit/receivers.py).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = bind_request(request)
        try:
            return self.get_response(request)
        finally:
            reset_request(token)
