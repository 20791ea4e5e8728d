"""Writes for the second factor: enrol an authenticator, issue recovery codes, check a code.

Each service is one atomic effect with its audit record in the same
transaction. A user's MFA writes are serialised on the user's row, and a
device being checked is locked (`select_for_update`), so one TOTP code or one
recovery code can never be accepted twice by racing requests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.mfa.exceptions import MfaAlreadyEnabled, MfaEnrolmentNotStarted
from accounts.mfa.provisioning import (
    recovery_code_display,
    recovery_code_generate,
    recovery_code_hash,
    recovery_code_normalise,
    totp_code_normalise,
)
from accounts.models import User
from audit.models import AuditEvent
from audit.services.events import Actor, audit_event_record

RECOVERY_CODE_COUNT = 10
# An authenticator not confirmed within this time is replaced by a fresh secret.
ENROLMENT_MAX_AGE = timedelta(minutes=30)
MAX_DEVICES_CHECKED = 5
TOTP_DEVICE_NAME = "Authenticator app"
RECOVERY_DEVICE_NAME = "Recovery codes"

Method = Literal["totp", "recovery_code"]


@dataclass(frozen=True, slots=True)
class Enrolment:
    """Outcome of confirming an authenticator. `recovery_codes` are in clear: show them once, store them nowhere."""

    confirmed: bool
    device: TOTPDevice
    recovery_codes: tuple[str, ...] = ()
    retry_after_seconds: int = 0  # > 0: too many wrong codes in a row, the device refused to check


@dataclass(frozen=True, slots=True)
class Verification:
    """Outcome of checking a second-factor code."""

    device: Device | None
    retry_after_seconds: int = 0  # > 0: every device refused to check (too many wrong codes in a row)

    @property
    def verified(self) -> bool:
        return self.device is not None

    @property
    def checked(self) -> bool:
        """False when nothing was compared, so the attempt taught the sender nothing."""
        return self.verified or self.retry_after_seconds == 0


def _actor(user: User) -> Actor:
    public_id = str(user.public_id)
    return Actor(staff=public_id) if user.is_staff else Actor(user=public_id)


def _user_lock(user: User) -> None:
    User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).first()


def _seconds_until(moment) -> int:
    return max(1, math.ceil((moment - timezone.now()).total_seconds()))


def _device_refusal_seconds(device: Device) -> int:
    """0 if the device will check a code now, else how long its own back-off still lasts."""
    allowed, info = device.verify_is_allowed()
    if allowed:
        return 0
    locked_until = (info or {}).get("locked_until")
    return _seconds_until(locked_until) if locked_until is not None else 1


def totp_enrolment_start(*, user: User) -> TOTPDevice:
    """The user's unconfirmed authenticator, created with a fresh secret if none is recent enough.

    At most one unconfirmed authenticator exists per user; older ones are removed.
    """
    with transaction.atomic(durable=True):
        _user_lock(user)
        if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
            raise MfaAlreadyEnabled()
        pending = list(TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id")[:MAX_DEVICES_CHECKED])
        fresh = next((d for d in pending if d.created_at and timezone.now() - d.created_at < ENROLMENT_MAX_AGE), None)
        TOTPDevice.objects.filter(user=user, confirmed=False).exclude(pk=getattr(fresh, "pk", None)).delete()
        if fresh is None:
            fresh = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
    return fresh


def totp_enrolment_confirm(*, user: User, code: str, request: HttpRequest | None = None) -> Enrolment:
    """Confirm the pending authenticator with a code from it, and issue fresh recovery codes.

    A wrong code leaves the device unconfirmed (and counts towards its back-off).
    """
    with transaction.atomic(durable=True):
        _user_lock(user)
        if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
            raise MfaAlreadyEnabled()
        device = (
            TOTPDevice.objects.select_for_update()
            .filter(user=user, confirmed=False, created_at__gte=timezone.now() - ENROLMENT_MAX_AGE)
            .order_by("-id")
            .first()
        )
        if device is None:
            raise MfaEnrolmentNotStarted()
        wait = _device_refusal_seconds(device)
        if wait:
            return Enrolment(confirmed=False, device=device, retry_after_seconds=wait)
        token = totp_code_normalise(code)
        if token is None or not device.verify_token(token):
            return Enrolment(confirmed=False, device=device)
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        recovery_codes = _recovery_codes_replace(user=user)
        audit_event_record(
            event_type="mfa.enrolled",
            outcome=AuditEvent.Outcome.SUCCESS,
            actor=_actor(user),
            object_type="accounts.user",
            object_id=str(user.public_id),
            payload={"method": "totp", "recovery_codes_issued": len(recovery_codes)},
            request=request,
        )
    return Enrolment(confirmed=True, device=device, recovery_codes=recovery_codes)


def _recovery_codes_replace(*, user: User) -> tuple[str, ...]:
    """Void every earlier recovery code and issue RECOVERY_CODE_COUNT new ones (hashed at rest)."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE_NAME, confirmed=True)
    codes: set[str] = set()
    while len(codes) < RECOVERY_CODE_COUNT:
        codes.add(recovery_code_generate())
    StaticToken.objects.bulk_create(StaticToken(device=device, token=recovery_code_hash(code)) for code in codes)
    return tuple(recovery_code_display(code) for code in sorted(codes))


def recovery_codes_replace(*, user: User) -> tuple[str, ...]:
    """Issue fresh recovery codes (voiding earlier ones) inside the caller's transaction, which holds the user.

    For flows that enrol an authenticator their own way (staff invitations,
    `accounts.invitations`): one rule for how codes are made and stored.
    """
    return _recovery_codes_replace(user=user)


def second_factor_verify(*, user: User, method: Method, code: str, request: HttpRequest | None = None) -> Verification:
    """Check a TOTP code or a recovery code (used up on success); record the outcome in the trail."""
    with transaction.atomic(durable=True):
        if method == "totp":
            devices: list[Device] = list(
                TOTPDevice.objects.select_for_update()
                .filter(user=user, confirmed=True)
                .order_by("id")[:MAX_DEVICES_CHECKED]
            )
            token = totp_code_normalise(code)
        elif method == "recovery_code":
            devices = list(
                StaticDevice.objects.select_for_update()
                .filter(user=user, confirmed=True)
                .order_by("id")[:MAX_DEVICES_CHECKED]
            )
            normalised = recovery_code_normalise(code)
            token = recovery_code_hash(normalised) if normalised is not None else None
        else:
            raise ValueError(f"unknown second-factor method {method!r}")

        verified: Device | None = None
        waits: list[int] = []
        checked_any = False
        for device in devices:
            wait = _device_refusal_seconds(device)
            if wait:
                waits.append(wait)
                continue
            checked_any = True
            if token is not None and device.verify_token(token):
                verified = device
                break
        retry_after = min(waits) if waits and not checked_any and verified is None else 0

        payload: dict = {"method": method}
        if verified is not None:
            if method == "recovery_code":
                payload["recovery_codes_left"] = StaticToken.objects.filter(device=verified).count()
        else:
            payload["reason"] = "no_device" if not devices else "device_back_off" if retry_after else "mismatch"
        audit_event_record(
            event_type="auth.mfa_verified" if verified is not None else "auth.mfa_failed",
            outcome=AuditEvent.Outcome.SUCCESS if verified is not None else AuditEvent.Outcome.FAILURE,
            actor=_actor(user),
            object_type="accounts.user",
            object_id=str(user.public_id),
            payload=payload,
            request=request,
        )
    return Verification(device=verified, retry_after_seconds=retry_after)
