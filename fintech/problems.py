"""Errors as data: every API error is an RFC 9457 problem details document.

Shape: `{type, title, status, detail, code, instance, request_id}` plus
`errors` for field validation. `code` is stable and documented; clients branch
on it, never on `title` or `detail`. Domain apps raise `DomainError`
subclasses; DRF and Django errors are mapped here, in one place.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.views import set_rollback

PROBLEM_CONTENT_TYPE = "application/problem+json"
logger = logging.getLogger(__name__)


class DomainError(Exception):
    """Base of every domain error: a stable code, an HTTP status, a safe message.

    `detail` must never contain PII or another customer's data: it goes to the
    client verbatim.
    """

    status: int = 400
    code: str = "domain_error"
    title: str = "Request refused"

    def __init__(
        self, detail: str | None = None, *, extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra or {}
        self.headers = headers or {}


_DRF_CODES: dict[type[drf.APIException], tuple[str, str]] = {
    drf.ValidationError: ("validation_error", "Invalid request"),
    drf.ParseError: ("malformed_request", "Malformed request body"),
    drf.NotAuthenticated: ("not_authenticated", "Authentication required"),
    drf.AuthenticationFailed: ("authentication_failed", "Authentication failed"),
    drf.PermissionDenied: ("permission_denied", "Permission denied"),
    drf.NotFound: ("not_found", "Not found"),
    drf.MethodNotAllowed: ("method_not_allowed", "Method not allowed"),
    drf.NotAcceptable: ("not_acceptable", "Not acceptable"),
    drf.UnsupportedMediaType: ("unsupported_media_type", "Unsupported media type"),
    drf.Throttled: ("rate_limited", "Too many requests"),
}


def problem_body(request, *, status: int, code: str, title: str, detail: str | None = None, **extra: Any) -> dict:
    body: dict[str, Any] = {
        "type": f"{settings.PROBLEM_TYPE_BASE_URL}{code}",
        "title": title,
        "status": status,
        "detail": detail or title,
        "code": code,
    }
    if request is not None:
        body["instance"] = request.path
        body["request_id"] = getattr(request, "request_id", None)
    body.update(extra)
    return body


def problem_response(
    request, *, status: int, code: str, title: str, detail: str | None = None, **extra: Any
) -> JsonResponse:
    """A problem response for code paths outside DRF (middleware, Django handlers)."""
    body = problem_body(request, status=status, code=code, title=title, detail=detail, **extra)
    return JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE)


def _field_errors(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """Flatten DRF's nested error dict into `[{field, code, message}]`."""
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            out.extend(_field_errors(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(detail, list):
        out = []
        for index, value in enumerate(detail):
            nested = isinstance(value, (dict, list))
            out.extend(_field_errors(value, f"{prefix}[{index}]" if nested else prefix))
        return out
    return [{"field": prefix or "non_field_errors", "code": getattr(detail, "code", "invalid"), "message": str(detail)}]


def problem_exception_handler(exc: Exception, context: dict) -> Any:
    """DRF's EXCEPTION_HANDLER: map any exception to a problem response."""
    from rest_framework.response import Response

    request = context.get("request")
    headers: dict[str, str] = {}
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()

    if isinstance(exc, DomainError):
        set_rollback()
        body = problem_body(request, status=exc.status, code=exc.code, title=exc.title, detail=exc.detail, **exc.extra)
        return Response(body, status=exc.status, headers=exc.headers, content_type=PROBLEM_CONTENT_TYPE)

    if not isinstance(exc, drf.APIException):
        return None  # a bug: Django's 500 handler answers, and the traceback is logged

    set_rollback()
    code, title = next(
        ((c, t) for cls, (c, t) in _DRF_CODES.items() if isinstance(exc, cls)), ("error", "Request failed")
    )
    code = getattr(exc, "problem_code", code)  # a subclass may name its own stable code
    extra: dict[str, Any] = {}
    if isinstance(exc, drf.ValidationError):
        extra["errors"] = _field_errors(exc.detail)
        detail = "One or more fields are invalid."
    else:
        detail = str(exc.detail)
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    body = problem_body(request, status=exc.status_code, code=code, title=title, detail=detail, **extra)
    return Response(body, status=exc.status_code, headers=headers, content_type=PROBLEM_CONTENT_TYPE)
