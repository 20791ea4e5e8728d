"""Reads about a user's second factors, always scoped to that user."""

from __future__ import annotations

from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User


def user_has_mfa(user: User) -> bool:
    """True if the user has a confirmed authenticator app (recovery codes alone do not count)."""
    if user is None or not getattr(user, "is_authenticated", False) or user.pk is None:
        return False
    return TOTPDevice.objects.filter(user_id=user.pk, confirmed=True).exists()


def recovery_codes_remaining(*, user: User) -> int:
    """How many unused recovery codes the user still holds."""
    return StaticToken.objects.filter(device__user_id=user.pk, device__confirmed=True).count()
