"""Django-level error handlers: problem details under /v1, plain pages elsewhere."""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.csrf import requires_csrf_token

from fintech.problems import problem_response

_ERRORS = {
    400: ("bad_request", "Bad request"),
    403: ("permission_denied", "Permission denied"),
    404: ("not_found", "Not found"),
    500: ("internal_error", "Internal server error"),
}


def is_api_request(request) -> bool:
    """Clients that read problem documents: the public API, OAuth, and the vault role's internal API."""
    return request.path.startswith(("/v1/", "/o/", "/internal/"))


def error_answer(request, *, status: int, code: str, title: str, detail: str = "", **extra):
    """A problem document for API callers, a page people can read for everyone else (the login forms)."""
    if is_api_request(request):
        return problem_response(request, status=status, code=code, title=title, detail=detail or None, **extra)
    context = {"status": status, "title": title, "detail": detail, "request_id": getattr(request, "request_id", "")}
    return render(request, "error.html", context, status=status)


def _handle(request, status: int):
    code, title = _ERRORS[status]
    return error_answer(request, status=status, code=code, title=title)


@requires_csrf_token
def bad_request(request, exception=None):
    return _handle(request, 400)


@requires_csrf_token
def permission_denied(request, exception=None):
    return _handle(request, 403)


def page_not_found(request, exception=None):
    return _handle(request, 404)


@requires_csrf_token
def server_error(request):
    return _handle(request, 500)
