"""Server-rendered pages for people: login (password, then second factor), MFA enrolment, home.

Thin views: throttling lives in `accounts.login_throttle`, second-factor writes
in `accounts.mfa.services`, session state in `accounts.mfa.session`.

Login flow:
1. `/accounts/login/` checks the throttle before the password. A locked account
   or address gets 429 with Retry-After and the password is not checked; Redis
   down gets 503.
2. A user with a confirmed authenticator is not logged in yet: the session
   remembers who passed the password, and `/accounts/login/mfa/` asks for a
   TOTP code or a recovery code (wrong codes count against the same throttle).
3. Staff without an authenticator are logged in and sent to the enrolment page,
   which tells them to use their invitation link (staff never enrol with a
   password alone): the admin stays closed to them (`accounts.admin_site`).
`/accounts/login/mfa/` also serves step-up: a logged-in user proving the second
factor again (the OAuth authorization view sends people there).
"""

from __future__ import annotations

import logging
import math
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib.auth import login as auth_login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django_otp import login as otp_login

from accounts import login_throttle
from accounts.login_throttle import Lockout, ThrottleUnavailable
from accounts.mfa import mark_session_mfa_verified, user_has_mfa
from accounts.mfa.exceptions import MfaAlreadyEnabled, MfaEnrolmentNotStarted
from accounts.mfa.provisioning import otpauth_uri, qr_code_data_uri, totp_secret_grouped
from accounts.mfa.selectors import recovery_codes_remaining
from accounts.mfa.services import second_factor_verify, totp_enrolment_confirm, totp_enrolment_start
from accounts.mfa.session import pending_login_clear, pending_login_get, pending_login_start, session_mfa_forget

logger = logging.getLogger(__name__)

MAX_NEXT_LENGTH = 2000
UNAVAILABLE_RETRY_AFTER_SECONDS = 30


# --- helpers -------------------------------------------------------------------------------


def next_path_safe(request: HttpRequest, value: str | None) -> str | None:
    """`value` if it is a path on this site ('/a/b?c=d'), else None: never another host or scheme."""
    if not value or not isinstance(value, str) or len(value) > MAX_NEXT_LENGTH:
        return None
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    if any(ord(character) < 0x20 or ord(character) == 0x7F for character in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    same_site = url_has_allowed_host_and_scheme(
        value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return value if same_site else None


def _requested_next(request: HttpRequest) -> str | None:
    return next_path_safe(request, request.POST.get("next") or request.GET.get("next"))


def _with_next(url: str, next_path: str | None) -> str:
    return f"{url}?{urlencode({'next': next_path}, safe='/')}" if next_path else url  # like redirect_to_login


def _destination(request: HttpRequest, next_path: str | None) -> str:
    target = next_path or resolve_url(settings.LOGIN_REDIRECT_URL)
    if urlsplit(target).path in (reverse("login"), reverse("login-mfa")):
        return resolve_url(settings.LOGIN_REDIRECT_URL)  # never back into the login: no loops
    return target


def _minutes(seconds: int) -> int:
    return max(1, math.ceil(seconds / 60))


def _locked_out(request: HttpRequest, lockout: Lockout, *, account: str, template: str, context: dict) -> HttpResponse:
    login_throttle.lockout_record(request=request, lockout=lockout, account=account)
    response = render(
        request,
        template,
        {**context, "lockout": lockout, "lockout_minutes": _minutes(lockout.retry_after_seconds)},
        status=429,
    )
    response["Retry-After"] = str(lockout.retry_after_seconds)
    return response


def _unavailable(request: HttpRequest) -> HttpResponse:
    logger.error("login refused: the login throttle store (Redis) does not answer")
    response = render(
        request,
        "registration/login_unavailable.html",
        {"retry_after_seconds": UNAVAILABLE_RETRY_AFTER_SECONDS},
        status=503,
    )
    response["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER_SECONDS)
    return response


def _throttle_gate(
    request: HttpRequest, *, account: str, template: str, context: dict
) -> login_throttle.Attempt | HttpResponse:
    """Count the attempt, or the response that refuses it (429 locked, 503 Redis down)."""
    try:
        attempt = login_throttle.attempt_start(account=account, address=getattr(request, "client_ip", None))
    except ThrottleUnavailable:
        return _unavailable(request)
    if isinstance(attempt, Lockout):
        return _locked_out(request, attempt, account=account, template=template, context=context)
    return attempt


def _forget_failures(attempt: login_throttle.Attempt) -> None:
    """After a full login. If Redis went away since the check, the login stands; stale failures just age out."""
    try:
        login_throttle.login_succeeded(attempt)
    except ThrottleUnavailable:
        logger.warning("could not clear login failures after a successful login: Redis does not answer")


def _take_back(attempt: login_throttle.Attempt) -> None:
    try:
        login_throttle.attempt_not_counted(attempt)
    except ThrottleUnavailable:
        logger.warning("could not take back an uncounted login attempt: Redis does not answer")


# --- login: password step ---------------------------------------------------------------------


def _after_login(request: HttpRequest, user, next_path: str | None) -> HttpResponse:
    if user.is_staff and not user_has_mfa(user):
        return redirect(_with_next(reverse("mfa-setup"), next_path))
    return redirect(_destination(request, next_path))


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
def login_view(request: HttpRequest) -> HttpResponse:
    next_path = _requested_next(request)
    if request.user.is_authenticated:
        return _after_login(request, request.user, next_path)
    if request.method != "POST":
        context = {"form": AuthenticationForm(request), "next": next_path or ""}
        return render(request, "registration/login.html", context)

    account = request.POST.get("username", "")
    # Unbound for the refusal pages: rendering a bound form's errors would run authenticate().
    refused_context = {"form": AuthenticationForm(request, initial={"username": account}), "next": next_path or ""}
    attempt = _throttle_gate(request, account=account, template="registration/login.html", context=refused_context)
    if isinstance(attempt, HttpResponse):
        return attempt

    form = AuthenticationForm(request, data=request.POST)
    context = {"form": form, "next": next_path or ""}

    if not form.is_valid():  # authenticate() ran if both fields were given; audit receivers record the failure
        checked = form.cleaned_data.get("username") is not None and bool(form.cleaned_data.get("password"))
        if checked:
            login_throttle.attempt_failed(attempt)
        else:
            _take_back(attempt)
        return render(request, "registration/login.html", context)

    user = form.get_user()
    if user_has_mfa(user):
        # The password was right, but failures so far stay counted until the second factor is proven.
        _take_back(attempt)
        pending_login_start(request, user=user, backend=user.backend, next_path=next_path)
        return redirect("login-mfa")

    auth_login(request, user)
    session_mfa_forget(request)
    _forget_failures(attempt)
    return _after_login(request, user, next_path)


# --- login: second factor (also step-up for a logged-in user) ---------------------------------


def _mfa_challenge(request: HttpRequest) -> tuple[object, str, str | None, bool] | HttpResponse:
    """Who must prove the second factor: (user, backend, next path, pending login) or where to go instead."""
    pending = pending_login_get(request)
    if pending is not None:
        user, backend, stored_next = pending
        return user, backend, next_path_safe(request, stored_next), True
    next_path = _requested_next(request)
    if not request.user.is_authenticated:
        return redirect(_with_next(reverse("login"), next_path))
    if not user_has_mfa(request.user):
        return redirect(_with_next(reverse("mfa-setup"), next_path))
    return request.user, "", next_path, False


def _code_refused(request: HttpRequest, verification, attempt, *, method: str, context: dict) -> HttpResponse:
    if verification.checked:
        login_throttle.attempt_failed(attempt)
        context["error"] = (
            "That recovery code is not valid or was already used."
            if method == "recovery_code"
            else "That code did not match. Check the time on your device and try the newest code."
        )
    else:
        _take_back(attempt)  # refused before comparing: nothing was learnt
        context["error"] = (
            f"Too many wrong codes in a row. Wait {verification.retry_after_seconds} seconds and try again."
        )
    return render(request, "registration/login_mfa.html", context)


@sensitive_post_parameters("otp_code", "recovery_code")
@csrf_protect
@never_cache
def login_mfa_view(request: HttpRequest) -> HttpResponse:
    challenge = _mfa_challenge(request)
    if isinstance(challenge, HttpResponse):
        return challenge
    user, backend, next_path, pending = challenge
    template = "registration/login_mfa.html"
    context: dict = {"next": next_path or "", "step_up": not pending}
    if request.method != "POST":
        return render(request, template, context)

    method = "recovery_code" if "recovery_code" in request.POST else "totp"
    code = request.POST.get("recovery_code" if method == "recovery_code" else "otp_code", "")
    context["method"] = method
    if not code.strip():
        context["error"] = "Enter a recovery code." if method == "recovery_code" else "Enter the 6-digit code."
        return render(request, template, context)

    attempt = _throttle_gate(request, account=user.email, template=template, context=context)
    if isinstance(attempt, HttpResponse):
        return attempt
    verification = second_factor_verify(user=user, method=method, code=code, request=request)
    if not verification.verified:
        return _code_refused(request, verification, attempt, method=method, context=context)

    _forget_failures(attempt)
    if pending:
        auth_login(request, user, backend=backend or None)
        pending_login_clear(request)
    else:
        request.session.cycle_key()  # privileges grew: a new session id
    otp_login(request, verification.device)
    mark_session_mfa_verified(request)
    return redirect(_destination(request, next_path))


# --- enrolment -----------------------------------------------------------------------------------


def _enabled_page(request: HttpRequest, next_path: str | None) -> HttpResponse:
    return render(
        request,
        "accounts/mfa_enabled.html",
        {
            "next": next_path or "",
            "continue_url": _destination(request, next_path),
            "recovery_codes_left": recovery_codes_remaining(user=request.user),
        },
    )


@sensitive_post_parameters("otp_code")
@csrf_protect
@never_cache
@login_required
def mfa_setup_view(request: HttpRequest) -> HttpResponse:
    """Customers enrol here; staff are refused (403).

    A password alone must never be enough to bind a second factor to a staff
    account: staff enrol only from their invitation link (`accounts.invitations`).
    """
    user = request.user
    next_path = _requested_next(request)
    if user_has_mfa(user):
        return _enabled_page(request, next_path)
    if user.is_staff:
        return render(request, "accounts/staff_mfa_by_invitation.html", status=403)

    context: dict = {"next": next_path or ""}
    if request.method == "POST":
        code = request.POST.get("otp_code", "")
        try:
            enrolment = totp_enrolment_confirm(user=user, code=code, request=request)
        except MfaAlreadyEnabled:
            return _enabled_page(request, next_path)
        except MfaEnrolmentNotStarted:
            context["error"] = "Setting up took too long, so here is a new QR code. Scan it and enter the new code."
        else:
            if enrolment.confirmed:
                request.session.cycle_key()
                otp_login(request, enrolment.device)
                mark_session_mfa_verified(request)
                return render(
                    request,
                    "accounts/mfa_recovery_codes.html",
                    {"recovery_codes": enrolment.recovery_codes, "continue_url": _destination(request, next_path)},
                )
            if enrolment.retry_after_seconds:
                context["error"] = (
                    f"Too many wrong codes in a row. Wait {enrolment.retry_after_seconds} seconds and try again."
                )
            else:
                context["error"] = "That code did not match. Enter the 6-digit code your app shows now."

    try:
        device = totp_enrolment_start(user=user)
    except MfaAlreadyEnabled:
        return _enabled_page(request, next_path)
    context.update(
        qr_code=qr_code_data_uri(otpauth_uri(device, account_label=user.email)),
        secret=totp_secret_grouped(device),
    )
    return render(request, "accounts/mfa_setup.html", context)


# --- home ----------------------------------------------------------------------------------------------


def home_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    return render(
        request,
        "accounts/home.html",
        {"mfa_offer": user.is_authenticated and not user.is_staff and not user_has_mfa(user)},
    )
