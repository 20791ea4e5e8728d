"""The request being served, for code that records changes without being handed it."""

from __future__ import annotations

import contextvars

from django.http import HttpRequest

_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar("audit_request", default=None)


def current_request() -> HttpRequest | None:
    return _request.get()


def bind_request(request: HttpRequest | None) -> contextvars.Token:
    return _request.set(request)


def reset_request(token: contextvars.Token) -> None:
    _request.reset(token)
