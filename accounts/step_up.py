"""Step-up authentication (RFC 9470) for high-value operations.

A token is good enough for a large amount only if the login behind it proved
MFA within the last STEP_UP_MAX_AGE_SECONDS. Otherwise the caller gets 401 with
`WWW-Authenticate: Bearer error="insufficient_user_authentication"` and the
`acr_values` / `max_age` to send in a new authorization request; the
authorization endpoint then asks for the second factor again.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from accounts.oauth.validators import session_for_token
from accounts.oauth.views import MFA_ACR
from fintech.problems import DomainError


class StepUpRequired(DomainError):
    status = 401
    code = "step_up_required"
    title = "A recent second factor is required for this operation"


def step_up_required_for(amount_minor: int) -> bool:
    return amount_minor > settings.STEP_UP_AMOUNT_MINOR


def require_recent_mfa(*, access_token, amount_minor: int) -> None:
    """Raise StepUpRequired unless the amount is small or the token's login proved MFA recently."""
    if not step_up_required_for(amount_minor):
        return
    max_age = settings.STEP_UP_MAX_AGE_SECONDS
    session = session_for_token(access_token) if access_token is not None else None
    verified_at = session.mfa_verified_at if session else None
    if verified_at is not None and (timezone.now() - verified_at).total_seconds() <= max_age:
        return
    challenge = (
        'Bearer realm="fintech", error="insufficient_user_authentication", '
        f'error_description="A second factor within the last {max_age} seconds is required", '
        f'acr_values="{MFA_ACR}", max_age={max_age}'
    )
    raise StepUpRequired(
        f"Amounts above the step-up threshold need multi-factor authentication within the last {max_age} seconds.",
        extra={"acr_values": MFA_ACR, "max_age": max_age},
        headers={"WWW-Authenticate": challenge},
    )
