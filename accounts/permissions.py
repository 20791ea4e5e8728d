"""Scope checks for /v1 views: 401 without a valid token, 403 with the wrong scope (RFC 6750).

A view states what it needs as `required_scopes = {"GET": [...], "POST": [...]}`
(or a plain list for every method). A view that forgets is closed, not open.
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.permissions import BasePermission


class InsufficientScope(exceptions.PermissionDenied):
    default_code = "insufficient_scope"
    problem_code = "insufficient_scope"

    def __init__(self, required: list[str]):
        super().__init__(detail=f"This call needs the scope(s): {' '.join(required)}.")
        self.required = required
        self.auth_header = f'Bearer realm="fintech", error="insufficient_scope", scope="{" ".join(required)}"'


def required_scopes_for(view, method: str) -> list[str] | None:
    declared = getattr(view, "required_scopes", None)
    if isinstance(declared, dict):
        return declared.get(method) or (declared.get("GET") if method in ("HEAD", "OPTIONS") else None)
    return list(declared) if declared is not None else None


class HasRequiredScopes(BasePermission):
    def has_permission(self, request, view) -> bool:
        token = request.auth
        if token is None or not hasattr(token, "scope"):
            raise exceptions.NotAuthenticated()
        required = required_scopes_for(view, request.method)
        if not required:
            raise exceptions.PermissionDenied("This operation is not available.")  # closed by default
        if not token.is_valid(required):
            raise InsufficientScope(required)
        return True


class IsCustomer(BasePermission):
    """The token acts for a customer (a user with a profile), not a client on its own behalf."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if user is None or not getattr(user, "is_authenticated", False) or not hasattr(user, "customer_profile"):
            raise exceptions.PermissionDenied("This call acts for a customer; the token has none.")
        return True
