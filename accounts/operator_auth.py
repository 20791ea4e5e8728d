"""The check behind `fintech.operators.operator_authenticate`: a staff member, their password and a TOTP code.

Registered from `AccountsConfig.ready()`. It is the web login's check, for the
command line:
* the attempt is counted by the same login throttle (`accounts.login_throttle`)
  before the password is checked, per account and per "address", which for a
  command is `command-line:<host name>`; a locked account is refused without
  checking anything, and failures are forgotten only once the code is right;
* the password goes through Django's `authenticate()` (so `auth.failed` is
  recorded as for a web login, and an inactive account is refused);
* the account must be staff with a confirmed authenticator app, and the code
  is checked by `second_factor_verify` (replay protection, device back-off,
  `auth.mfa_verified` / `auth.mfa_failed` in the trail). Recovery codes are
  not accepted here: they are for getting back into the web login.
Every refusal raises the same `OperatorRefused` message, whichever part was
wrong, and records `auth.operator_failed` with the reason, for investigators
only; a success records `auth.operator_authenticated` naming the command.
Neither the password nor the code is ever printed, logged or recorded.
"""

from __future__ import annotations

import logging
import math
import socket

from django.contrib.auth import authenticate

from accounts import login_throttle
from accounts.login_throttle import Lockout, ThrottleUnavailable
from accounts.mfa.selectors import user_has_mfa
from accounts.mfa.services import second_factor_verify
from accounts.models import User
from audit.models import AuditEvent
from audit.services.events import Actor, audit_event_record
from fintech.operators import Operator, OperatorCredentials, OperatorRefused

logger = logging.getLogger(__name__)


def command_line_address() -> str:
    """The throttle's address for commands run on this machine: one bucket per host, apart from the web's."""
    return f"{login_throttle.COMMAND_LINE_ADDRESS_PREFIX}{socket.gethostname()}"


def _refuse(*, command: str, reason: str, email: str, message: str | None = None) -> OperatorRefused:
    """Record the refusal; the account appears by public id when the email names one, never as the email."""
    public_id = (
        User.objects.filter(email__iexact=email[: login_throttle.MAX_ACCOUNT_LENGTH])
        .values_list("public_id", flat=True)
        .first()
        if email
        else None
    )
    audit_event_record(
        event_type="auth.operator_failed",
        outcome=AuditEvent.Outcome.DENIED if reason == "locked_out" else AuditEvent.Outcome.FAILURE,
        actor=Actor(),
        object_type="accounts.user" if public_id else "",
        object_id=str(public_id) if public_id else "",
        payload={"command": command, "reason": reason},
    )
    return OperatorRefused(message) if message else OperatorRefused()


def _take_back(attempt: login_throttle.Attempt) -> None:
    try:
        login_throttle.attempt_not_counted(attempt)
    except ThrottleUnavailable:
        logger.warning("could not take back an uncounted operator attempt: Redis does not answer")


def _forget_failures(attempt: login_throttle.Attempt) -> None:
    try:
        login_throttle.login_succeeded(attempt)
    except ThrottleUnavailable:
        logger.warning("could not clear login failures after an operator authenticated: Redis does not answer")


def operator_credentials_check(*, command: str, credentials: OperatorCredentials) -> Operator:
    """The `OperatorAuthenticator` accounts registers. Call outside any transaction: the code check commits."""
    email = credentials.email
    if not (email and credentials.password and credentials.code):
        raise _refuse(command=command, reason="incomplete", email=email)  # nothing checked, nothing counted

    try:
        attempt = login_throttle.attempt_start(account=email, address=command_line_address())
    except ThrottleUnavailable:
        logger.error("operator authentication refused: the login throttle store (Redis) does not answer")
        raise _refuse(
            command=command,
            reason="throttle_unavailable",
            email=email,
            message="operator authentication is unavailable (the login throttle does not answer); nothing changed",
        ) from None
    if isinstance(attempt, Lockout):
        minutes = max(1, math.ceil(attempt.retry_after_seconds / 60))
        raise _refuse(
            command=command,
            reason="locked_out",
            email=email,
            message=f"too many failed sign-in attempts: try again in {minutes} minutes. Nothing was changed.",
        )

    user = authenticate(request=None, username=email, password=credentials.password)
    if user is None or not user.is_active:
        login_throttle.attempt_failed(attempt)
        raise _refuse(command=command, reason="password", email=email)
    if not user.is_staff:
        login_throttle.attempt_failed(attempt)  # a right password, but no operator: still a failure here
        raise _refuse(command=command, reason="not_staff", email=email)
    if not user_has_mfa(user):
        login_throttle.attempt_failed(attempt)
        raise _refuse(command=command, reason="no_mfa", email=email)

    verification = second_factor_verify(user=user, method="totp", code=credentials.code)
    if not verification.verified:
        if verification.checked:
            login_throttle.attempt_failed(attempt)
        else:
            _take_back(attempt)  # the device refused to compare (back-off): nothing was learnt
        raise _refuse(command=command, reason="code", email=email)

    _forget_failures(attempt)
    actor = Actor(staff=str(user.public_id))
    audit_event_record(
        event_type="auth.operator_authenticated",
        outcome=AuditEvent.Outcome.SUCCESS,
        actor=actor,
        object_type="accounts.user",
        object_id=str(user.public_id),
        payload={"command": command},
    )
    return Operator(public_id=str(user.public_id), actor=actor, user=user)
