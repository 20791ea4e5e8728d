"""For tests: what an operator types when a management command asks who they are.

Commands that change state authenticate their operator (fintech/operators.py):
email, password and a current TOTP code, read from stdin. `operator_stdin`
gives a staff member a confirmed authenticator if they have none and returns
those three lines for `call_command(..., stdin=...)`.

TOTP replay protection refuses a time step already used, so two commands in
the same 30 seconds would fail the second time. Each call therefore forgets
the device's last used step (and its back-off) before computing the code: a
test may run as many commands as it likes. Tests about replay use
`totp_code_now` and keep the device as it is.
"""

from __future__ import annotations

import io
import time

from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from accounts.services import staff_create

OPERATOR_PASSWORD = "operator horse battery staple"


def operator_create(
    *,
    email: str = "operator@example.com",
    password: str = OPERATOR_PASSWORD,
    roles: list[str] | None = None,
    superuser: bool = False,
) -> User:
    """A staff member with a confirmed authenticator, holding `roles` (commands check their permission)."""
    user = staff_create(email=email, password=password, roles=roles or [])
    if superuser:
        User.objects.filter(pk=user.pk).update(is_superuser=True)
        user.refresh_from_db()
    operator_device(user)
    return user


def operator_device(user: User) -> TOTPDevice:
    """The user's confirmed authenticator, created if they have none."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Operator authenticator", confirmed=True)
    return device


def totp_code_now(device: TOTPDevice, *, steps_from_now: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_from_now * device.step
    return f"{totp.token():0{device.digits}d}"


def operator_stdin(user: User, password: str = OPERATOR_PASSWORD) -> io.StringIO:
    """stdin for one command run as `user`: email, password, and a code the device will accept now."""
    device = operator_device(user)
    TOTPDevice.objects.filter(pk=device.pk).update(
        last_t=-1, throttling_failure_count=0, throttling_failure_timestamp=None
    )
    device.refresh_from_db()
    return io.StringIO(f"{user.email}\n{password}\n{totp_code_now(device)}\n")
