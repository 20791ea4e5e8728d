"""Step-up authentication (RFC 9470) for high-value operations.

A token is good enough for a large amount (above its currency's threshold in
STEP_UP_THRESHOLDS_MINOR) only if the login behind it proved MFA within the
last STEP_UP_MAX_AGE_SECONDS. Otherwise the caller gets 401 with
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


def step_up_required_for(amount_minor: int, currency: str) -> bool:
    """Whether `amount_minor` of `currency` is above the currency's threshold (`STEP_UP_THRESHOLDS_MINOR`).

    Thresholds are per currency because minor units are not comparable across
    currencies (100,000 is 1,000.00 EUR but 100.000 KWD and 100,000 JPY). It
    fails closed: a currency without a configured threshold needs step-up for
    every amount, so adding a currency to the ledger never silently lowers the bar.
    """
    threshold_minor = getattr(settings, "STEP_UP_THRESHOLDS_MINOR", {}).get(currency)
    return threshold_minor is None or amount_minor > threshold_minor


def require_recent_mfa(*, access_token, amount_minor: int, currency: str) -> None:
    """Raise StepUpRequired unless the amount is small for its currency or the token's login proved MFA recently."""
    if not step_up_required_for(amount_minor, currency):
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
    which = (
        f"Amounts above the step-up threshold for {currency}"
        if currency in settings.STEP_UP_THRESHOLDS_MINOR
        else f"Every amount in {currency} (no step-up threshold is configured for it)"
    )
    raise StepUpRequired(
        f"{which} need multi-factor authentication within the last {max_age} seconds.",
        extra={"acr_values": MFA_ACR, "max_age": max_age},
        headers={"WWW-Authenticate": challenge},
    )
