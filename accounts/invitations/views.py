"""The staff invitation pages: open the link, choose a password, scan a QR code and prove it, sign in.

1. `/accounts/staff-invitation/<token>/` shows what the link is for. Opening
   it changes nothing (mail scanners fetch links); its button POSTs back, which
   signs out whoever was signed in on this browser, keeps the link's hash in a
   fresh session and redirects to a URL without the token: from there on the
   token is in no address bar, history entry or Referer.
2. `/accounts/staff-invitation/`: the password, twice, checked by Django's
   validators; only its hash is kept in the session until the end.
3. Same URL: a QR code of an authenticator secret generated for this flow and
   held in the server-side session (never in a URL), and the code it shows.
   A right code creates everything at once (`staff_invitation_accept`); the
   recovery codes are shown once and the new staff member is signed in, their
   session verified by the authenticator just proven, and sent to the admin.

Every page: `never_cache`, `Referrer-Policy: same-origin` (the token never
leaves in a Referer to another site; `no-referrer` made Chromium send
`Origin: null` on the form's POST, which Django's CSRF check refuses, found in
review with a real browser). The token is in the
first request's path, so access logs see it; the link is single-use and dies
at acceptance.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout
from django.contrib.auth.forms import SetPasswordForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django_otp import login as otp_login

from accounts.approvals.models import StaffInvitation
from accounts.invitations.exceptions import InvitationCodeMismatch, InvitationLinkRefused
from accounts.invitations.selectors import invitation_account, invitation_token_hash
from accounts.invitations.services import (
    Acceptance,
    staff_invitation_accept,
    staff_invitation_open,
    staff_invitation_password_hash,
    totp_enrolment_device,
    totp_key_new,
)
from accounts.mfa.provisioning import otpauth_uri, qr_code_data_uri, totp_secret_grouped
from accounts.mfa.session import mark_session_mfa_verified

SESSION_STATE_KEY = "staff_invitation"


def _page(request: HttpRequest, template: str, context: dict, status: int = 200) -> HttpResponse:
    response = render(request, template, context, status=status)
    response["Referrer-Policy"] = "same-origin"
    return response


def _refused(request: HttpRequest, reason: str) -> HttpResponse:
    request.session.pop(SESSION_STATE_KEY, None)
    status = 404 if reason in ("unknown", "no_link") else 410
    return _page(request, "accounts/staff_invitation_invalid.html", {"reason": reason}, status=status)


def _purpose_context(invitation: StaffInvitation) -> dict:
    return {"reenrol": invitation.purpose == StaffInvitation.Purpose.REENROL}


@csrf_protect
@never_cache
def staff_invitation_open_view(request: HttpRequest, token: str) -> HttpResponse:
    token_hash = invitation_token_hash(token)
    try:
        invitation = staff_invitation_open(token_hash=token_hash, stage="open", request=request)
    except InvitationLinkRefused as refused:
        return _refused(request, refused.reason)
    if request.method != "POST":
        return _page(request, "accounts/staff_invitation_start.html", _purpose_context(invitation))
    if request.user.is_authenticated:
        logout(request)  # another account on this browser: the new one must not inherit its session
    request.session.cycle_key()
    request.session[SESSION_STATE_KEY] = {"token_hash": token_hash}
    return redirect("staff-invitation")


def _password_step(request: HttpRequest, state: dict, invitation: StaffInvitation) -> HttpResponse:
    form = SetPasswordForm(invitation_account(invitation), data=request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        try:
            state["password_hash"] = staff_invitation_password_hash(
                invitation=invitation, password=form.cleaned_data["new_password1"]
            )
        except ValidationError as error:
            form.add_error("new_password1", error)
        else:
            request.session[SESSION_STATE_KEY] = state
            return redirect("staff-invitation")
    return _page(request, "accounts/staff_invitation_password.html", {"form": form, **_purpose_context(invitation)})


def _signed_in(request: HttpRequest, acceptance: Acceptance) -> HttpResponse:
    request.session.pop(SESSION_STATE_KEY, None)
    auth_login(request, acceptance.user, backend=settings.AUTHENTICATION_BACKENDS[0])
    otp_login(request, acceptance.device)
    mark_session_mfa_verified(request)
    return _page(
        request,
        "accounts/mfa_recovery_codes.html",
        {"recovery_codes": acceptance.recovery_codes, "continue_url": reverse("admin:index")},
    )


def _authenticator_step(request: HttpRequest, state: dict) -> HttpResponse:
    key = state.get("totp_key") or ""
    context: dict = {}
    if request.method == "POST" and key:
        try:
            acceptance = staff_invitation_accept(
                token_hash=state["token_hash"],
                password_hash=state["password_hash"],
                totp_key=key,
                code=request.POST.get("otp_code", ""),
                request=request,
            )
        except InvitationCodeMismatch:
            context["error"] = "That code did not match. Enter the 6-digit code your app shows now."
        except InvitationLinkRefused as refused:
            return _refused(request, refused.reason)
        else:
            return _signed_in(request, acceptance)
    try:
        invitation = staff_invitation_open(token_hash=state["token_hash"], stage="authenticator", request=request)
    except InvitationLinkRefused as refused:
        return _refused(request, refused.reason)
    if not key:
        state["totp_key"] = key = totp_key_new()
        request.session[SESSION_STATE_KEY] = state
    device = totp_enrolment_device(key=key)
    context.update(
        qr_code=qr_code_data_uri(otpauth_uri(device, account_label=invitation.email)),
        secret=totp_secret_grouped(device),
        **_purpose_context(invitation),
    )
    return _page(request, "accounts/staff_invitation_authenticator.html", context)


@sensitive_post_parameters("new_password1", "new_password2", "otp_code")
@csrf_protect
@never_cache
def staff_invitation_view(request: HttpRequest) -> HttpResponse:
    state = request.session.get(SESSION_STATE_KEY)
    if not isinstance(state, dict) or not state.get("token_hash"):
        return _refused(request, "no_link")
    if not state.get("password_hash"):
        try:
            invitation = staff_invitation_open(token_hash=state["token_hash"], stage="password", request=request)
        except InvitationLinkRefused as refused:
            return _refused(request, refused.reason)
        return _password_step(request, state, invitation)
    return _authenticator_step(request, state)
