"""For tests: log a client in as if the person had proven the second factor.

With the MFA admin installed, `client.force_login(staff)` alone no longer opens
the admin: the session must also be verified by a confirmed device. Tests that
are about something else than logging in use `force_login_with_mfa` instead.
"""

from __future__ import annotations

from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.mfa.session import MFA_VERIFIED_AT_SESSION_KEY
from accounts.models import User


def force_login_with_mfa(client, user: User) -> TOTPDevice:
    """`client.force_login(user)`, plus a confirmed authenticator that verified this session just now."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Test authenticator", confirmed=True)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session[MFA_VERIFIED_AT_SESSION_KEY] = timezone.now().isoformat()
    session.save()
    return device
