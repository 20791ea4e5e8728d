"""What the browser session knows about the second factor.

* `"mfa_verified_at"`: when the session last proved the second factor.
* `"mfa_pending_login"`: between a correct password and a correct code, who is
  logging in. Nobody is logged in yet; the state expires after a few minutes
  and is bound to the password (a password change in between voids it).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.contrib.auth import SESSION_KEY
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts.models import User

MFA_VERIFIED_AT_SESSION_KEY = "mfa_verified_at"
PENDING_LOGIN_SESSION_KEY = "mfa_pending_login"
PENDING_LOGIN_MAX_AGE = timedelta(minutes=5)


def mark_session_mfa_verified(request: HttpRequest) -> datetime:
    """Record that this session proved the second factor now (ISO 8601, UTC)."""
    verified_at = timezone.now().astimezone(UTC)
    request.session[MFA_VERIFIED_AT_SESSION_KEY] = verified_at.isoformat()
    return verified_at


def session_mfa_verified_at(request: HttpRequest) -> datetime | None:
    """When this session's user last proved the second factor (aware, UTC), or None.

    None unless the user is logged in and django-otp still considers the
    session verified (a deleted or unconfirmed device voids the time). Reads the
    user as the middleware installed it: call it from a view, not in the same
    request right after `login()`.
    """
    raw = request.session.get(MFA_VERIFIED_AT_SESSION_KEY)
    user = getattr(request, "user", None)
    if not raw or user is None or not user.is_authenticated:
        return None
    is_verified = getattr(user, "is_verified", None)
    if is_verified is None or not is_verified():
        return None
    try:
        verified_at = datetime.fromisoformat(raw)
    except (TypeError, ValueError):
        return None
    if verified_at.tzinfo is None:
        return None
    return verified_at.astimezone(UTC)


def session_mfa_forget(request: HttpRequest) -> None:
    request.session.pop(MFA_VERIFIED_AT_SESSION_KEY, None)


def pending_login_start(request: HttpRequest, *, user: User, backend: str, next_path: str | None) -> None:
    """The password was right and a second factor is needed: remember who, not logged in yet.

    A fresh session key, so a session id planted before the password step is
    worth nothing afterwards.
    """
    if request.session.get(SESSION_KEY) not in (None, str(user.pk)):
        request.session.flush()  # someone else was logged in on this browser
    request.session.cycle_key()
    request.session[PENDING_LOGIN_SESSION_KEY] = {
        "user": str(user.pk),
        "backend": backend,
        "auth_hash": user.get_session_auth_hash(),
        "started_at": timezone.now().astimezone(UTC).isoformat(),
        "next": next_path or "",
    }


def pending_login_get(request: HttpRequest) -> tuple[User, str, str] | None:
    """(user, backend, next path) of a login waiting for its second factor, if still valid."""
    state = request.session.get(PENDING_LOGIN_SESSION_KEY)
    if not isinstance(state, dict):
        return None
    try:
        started_at = datetime.fromisoformat(state["started_at"])
        user = User.objects.filter(pk=int(state["user"]), is_active=True).first()
    except (KeyError, TypeError, ValueError):
        user = None
        started_at = None
    if user is None or started_at is None or timezone.now() - started_at > PENDING_LOGIN_MAX_AGE:
        pending_login_clear(request)
        return None
    if not constant_time_compare(str(state.get("auth_hash", "")), user.get_session_auth_hash()):
        pending_login_clear(request)  # the password changed since it was checked
        return None
    return user, str(state.get("backend", "")), str(state.get("next", ""))


def pending_login_clear(request: HttpRequest) -> None:
    request.session.pop(PENDING_LOGIN_SESSION_KEY, None)
