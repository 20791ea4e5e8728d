"""Records every /v1 API call in the audit trail (seed 002's API-call fields).

Bodies are never stored: only a masked summary (field names and sizes, with
values scrubbed). The record is written after the response is built, as its
own INSERT; a failure to record is logged and counted, never swallowed silently,
but does not turn a completed money movement into an error for the client.
"""

from __future__ import annotations

import json
import logging
import time

from django.conf import settings

from audit.context import bind_request, reset_request
from audit.models import AuditEvent
from audit.risk import assess_api_call
from audit.services.events import Actor, audit_event_record

logger = logging.getLogger(__name__)
API_PREFIX = "/v1/"
UNAUDITED_PATHS = ("/v1/schema", "/v1/docs")
MAX_SUMMARY_FIELDS = 50


def body_summary(content_type: str, body: bytes) -> dict:
    """Shape, never values: top-level field names of a JSON object and the size."""
    summary: dict = {"bytes": len(body)}
    if body and "json" in content_type:
        try:
            document = json.loads(body)
        except ValueError:
            summary["json"] = "invalid"
        else:
            if isinstance(document, dict):
                summary["fields"] = sorted(str(key) for key in document)[:MAX_SUMMARY_FIELDS]
            else:
                summary["json"] = type(document).__name__
    return summary


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
        response = self.get_response(request)
        self._record(request, request_body, response, time.perf_counter() - started)
        return response

    def _record(self, request, request_body: bytes, response, elapsed: float) -> None:
        status = response.status_code
        match = getattr(request, "resolver_match", None)
        endpoint = f"/{match.route}" if match is not None and match.route else "unmatched"
        response_body = getattr(response, "content", b"") if not getattr(response, "streaming", False) else b""
        risk_score, flags = assess_api_call(request=request, status=status, endpoint=endpoint)
        outcome = (
            AuditEvent.Outcome.SUCCESS
            if status < 400
            else AuditEvent.Outcome.DENIED
            if status in (401, 403)
            else AuditEvent.Outcome.FAILURE
        )
        try:
            audit_event_record(
                event_type="api.call",
                outcome=outcome,
                actor=Actor.from_request(request),
                object_type="endpoint",
                object_id=endpoint,
                request=request,
                payload={
                    "method": request.method,
                    "endpoint": endpoint,
                    "status": status,
                    "request": body_summary(request.META.get("CONTENT_TYPE", ""), request_body),
                    "response": body_summary(response.get("Content-Type", ""), response_body),
                    "duration_ms": round(elapsed * 1000, 2),
                    "risk_score": risk_score,
                    "compliance_flags": flags,
                },
            )
            security_event = {401: "auth.failed", 403: "permission.denied"}.get(status)
            if security_event:
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
