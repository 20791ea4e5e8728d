"""Customers reset their own password: the request, the email, the completed reset, signing out everywhere.

Django's reset flow (pages in `accounts.password_reset_views`), with the rules
a payments platform adds on top (issue 11, "customers' credentials are the
customer's"):

* **Customers only.** A staff or superuser account is never reset by an email
  link: a mailbox would then be a way into the admin. Staff recover through a
  reviewed second-factor reset. Inactive accounts get no email either.
* **One answer for everyone.** The page after a request is the same whether the
  email is a customer's, a staff member's, an inactive account's or nobody's;
  so are the throttle and its refusals, which count the typed email whether it
  exists or not. A failed delivery is logged and audited, never shown. What
  differs is time: only a customer's request renders and sends an email. With
  the console/file backends that is well under a millisecond; an SMTP relay is
  slower, so production should use a relay that accepts quickly (or a queue).
* **Throttled, failing closed.** Requests are counted in Redis sliding windows
  (`fintech.rate_limits`) per client address (IPv6 per /64) and per HMAC of the
  email, never the email itself. Redis not answering refuses the request
  (`PasswordResetUnavailable`, 503): unlimited mail is not an option.
* **A link works once, for `PASSWORD_RESET_TIMEOUT`.** Django's token generator
  hashes the password (and last login) into the token, so setting a password
  voids every link issued before. Completing a reset locks the user's row and
  checks the token again under the lock, so two racing submits of one link
  set one password. The link names the user by public id, never the database
  key, and is built on the service's one public origin (the OAuth issuer),
  never on the request's Host header, which a client chooses.
* **A completed reset signs the customer out everywhere**: every web session
  (each stores a hash of the password, and Django ends any session whose hash
  no longer matches at its next request) and every OAuth credential (refresh
  token families, access tokens, unexchanged authorization codes). The second
  factor is untouched: an email link alone never gets past it.
* **Audited without the email.** `auth.password_reset_requested` (a customer, or
  an anonymous caller), `auth.password_reset_triggered` (staff, who may only
  send the email, never set or see a password), `auth.password_reset_completed`
  and `auth.signed_out_everywhere` name the user by public id; a request for an
  unknown email records only an HMAC of it.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict, dataclass

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import EmailMessage
from django.db import transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.crypto import salted_hmac
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from oauth2_provider.models import AccessToken, Grant, RefreshToken

from accounts.login_throttle import account_normalise, address_normalise
from accounts.models import User
from audit.models import AuditEvent
from audit.services.events import Actor, audit_event_record
from fintech.public_origin import public_origin
from fintech.rate_limits import RateLimitUnavailable, rate_parse, sliding_window_take
from fintech.redis_client import first_in_period, redis_key

logger = logging.getLogger(__name__)

EMAIL_SUBJECT_TEMPLATE = "registration/password_reset_subject.txt"
EMAIL_BODY_TEMPLATE = "registration/password_reset_email.txt"
MAX_EMAIL_LENGTH = 254
USER_OBJECT_TYPE = "accounts.user"


class PasswordResetNotAllowed(Exception):
    """Not a customer's account (staff, superuser) or not active: no email, no new password."""


class PasswordResetLinkInvalid(Exception):
    """The link is tampered with, expired, or already used (the password changed since)."""


class PasswordResetUnavailable(Exception):
    """Redis did not answer: requests cannot be counted, so none is served."""


class PasswordResetDeliveryFailed(Exception):
    """The email backend refused the message. Logged and audited; shown to staff, never to the public."""


class PasswordResetThrottled(Exception):
    """Too many requests from this address, or for this email, in the window."""

    def __init__(self, *, scope: str, retry_after_seconds: int) -> None:
        super().__init__(f"password reset requests throttled per {scope}")
        self.scope = scope
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True, slots=True)
class SignOutSummary:
    """What `customer_sign_out_everywhere` ended: counts only, fit for the audit payload."""

    refresh_token_families: int
    refresh_tokens: int
    access_tokens: int
    unexchanged_codes: int  # not "authorization_…": the audit scrubber hides keys naming authorization


# --- who may be reset, and how the link names them ------------------------------------------------


def customer_reset_eligible(user: User) -> bool:
    """Active customers only. Staff and superusers never get a reset link by email."""
    return bool(user.is_active and not user.is_staff and not user.is_superuser)


def email_digest(email: str) -> str:
    """An HMAC of the typed email (case- and compatibility-folded): a throttle key and audit value, never the email."""
    return salted_hmac("accounts.password_reset.email", account_normalise(email), algorithm="sha256").hexdigest()[:32]


def password_reset_link(user: User) -> str:
    """The absolute, single-use reset link for `user`, valid for PASSWORD_RESET_TIMEOUT seconds."""
    uidb64 = urlsafe_base64_encode(user.public_id.bytes)
    token = default_token_generator.make_token(user)
    return public_origin() + reverse("password-reset-confirm", kwargs={"uidb64": uidb64, "token": token})


def password_reset_user_find(uidb64: str) -> User | None:
    """The customer a link names, or None (malformed, unknown, or not eligible: all look the same)."""
    try:
        public_id = uuid.UUID(bytes=urlsafe_base64_decode(uidb64))
    except (TypeError, ValueError):
        return None
    user = User.objects.filter(public_id=public_id).first()
    return user if user is not None and customer_reset_eligible(user) else None


# --- throttling --------------------------------------------------------------------------------------


def _refusal_is_first(key: str, retry_after_seconds: int) -> bool:
    """True once per refusal period, so a flood of refused requests writes one audit row, not one each."""
    return first_in_period(f"{key}:refused", retry_after_seconds)


def _throttle_take(*, scope: str, digest: str, rate_setting: str, request: HttpRequest | None) -> None:
    key = redis_key("password-reset", scope, digest)
    try:
        decision = sliding_window_take(key=key, rate=rate_parse(rate_setting), cost=1)
    except RateLimitUnavailable:
        logger.error("password reset refused: the rate limit store (Redis) does not answer")
        raise PasswordResetUnavailable() from None
    if decision.allowed:
        return
    if _refusal_is_first(key, decision.retry_after_seconds):
        audit_event_record(
            event_type="auth.password_reset_requested",
            outcome=AuditEvent.Outcome.DENIED,
            actor=Actor.from_request(request),
            object_type=USER_OBJECT_TYPE,
            payload={"result": "throttled", "scope": scope},
            request=request,
        )
    raise PasswordResetThrottled(scope=scope, retry_after_seconds=decision.retry_after_seconds)


def _address_digest(request: HttpRequest | None) -> str:
    address = address_normalise(getattr(request, "client_ip", None))
    return salted_hmac("accounts.password_reset.address", address, algorithm="sha256").hexdigest()[:32]


# --- sending -----------------------------------------------------------------------------------------


def _deliver(*, user: User, actor: Actor, event_type: str, request: HttpRequest | None) -> None:
    """Render and send the email, with its audit row in the same transaction; a refused send rolls it back."""
    context = {
        "link": password_reset_link(user),
        "valid_minutes": max(1, settings.PASSWORD_RESET_TIMEOUT // 60),
        "triggered_by_staff": bool(actor.staff),
    }
    message = EmailMessage(
        subject=" ".join(render_to_string(EMAIL_SUBJECT_TEMPLATE, context).split()),  # one line: no header injection
        body=render_to_string(EMAIL_BODY_TEMPLATE, context),
        to=[user.email],
    )
    audit = {"actor": actor, "object_type": USER_OBJECT_TYPE, "object_id": str(user.public_id), "request": request}
    try:
        with transaction.atomic():
            audit_event_record(
                event_type=event_type,
                outcome=AuditEvent.Outcome.SUCCESS,
                payload={"sent": True, "link_valid_seconds": settings.PASSWORD_RESET_TIMEOUT},
                **audit,
            )
            message.send()
    except OSError as error:  # smtplib.SMTPException and socket errors are OSErrors
        # Never the exception text: an SMTP refusal quotes the recipient.
        logger.error("password reset email not sent: %s", type(error).__name__)
        audit_event_record(event_type=event_type, outcome=AuditEvent.Outcome.FAILURE, payload={"sent": False}, **audit)
        raise PasswordResetDeliveryFailed() from None


def password_reset_request(*, email: str, request: HttpRequest) -> None:
    """A reset asked for on the public page: email the customer a link, if `email` is an active customer's.

    Returns the same way for every email (customer, staff, inactive, unknown,
    or a failed delivery); the caller shows one page. Raises
    PasswordResetThrottled (429) or PasswordResetUnavailable (503), which do
    not depend on whether the email exists either.
    """
    digest = email_digest(email)
    _throttle_take(
        scope="address",
        digest=_address_digest(request),
        rate_setting=settings.PASSWORD_RESET_REQUESTS_PER_ADDRESS,
        request=request,
    )
    _throttle_take(
        scope="email", digest=digest, rate_setting=settings.PASSWORD_RESET_REQUESTS_PER_EMAIL, request=request
    )
    actor = Actor.from_request(request)
    user = User.objects.filter(email__iexact=(email or "").strip()[:MAX_EMAIL_LENGTH]).first()
    if user is None or not customer_reset_eligible(user):
        audit_event_record(
            event_type="auth.password_reset_requested",
            outcome=AuditEvent.Outcome.FAILURE if user is None else AuditEvent.Outcome.DENIED,
            actor=actor,
            object_type=USER_OBJECT_TYPE,
            # An unknown email is recorded as its HMAC only; a known account by its public id.
            object_id="" if user is None else str(user.public_id),
            payload={"result": "no_account", "email_digest": digest}
            if user is None
            else {"result": "staff_account" if user.is_staff or user.is_superuser else "inactive_account"},
            request=request,
        )
        return
    try:
        _deliver(user=user, actor=actor, event_type="auth.password_reset_requested", request=request)
    except PasswordResetDeliveryFailed:
        return  # logged and audited; the page must not say that this email exists


def customer_password_reset_send(*, user: User, actor: Actor, request: HttpRequest | None = None) -> None:
    """Email `user` a reset link: staff triggering it for a customer, or any other caller of the flow.

    Staff never set or see the password; the customer does, from the link.
    Recorded as `auth.password_reset_triggered` when `actor` is staff, else
    `auth.password_reset_requested`. Counts against the customer's per-email
    limit, so a staff member cannot flood a customer's mailbox either.
    Raises PasswordResetNotAllowed (a staff, superuser or inactive target,
    recorded as denied), PasswordResetThrottled, PasswordResetUnavailable or
    PasswordResetDeliveryFailed.
    """
    event_type = "auth.password_reset_triggered" if actor.staff else "auth.password_reset_requested"
    if not customer_reset_eligible(user):
        audit_event_record(
            event_type=event_type,
            outcome=AuditEvent.Outcome.DENIED,
            actor=actor,
            object_type=USER_OBJECT_TYPE,
            object_id=str(user.public_id),
            payload={"result": "not_a_customer" if user.is_staff or user.is_superuser else "inactive_account"},
            request=request,
        )
        raise PasswordResetNotAllowed()
    _throttle_take(
        scope="email",
        digest=email_digest(user.email),
        rate_setting=settings.PASSWORD_RESET_REQUESTS_PER_EMAIL,
        request=request,
    )
    _deliver(user=user, actor=actor, event_type=event_type, request=request)


# --- completing the reset ------------------------------------------------------------------------------


def _oauth_credentials_revoke(user: User) -> SignOutSummary:
    """Every OAuth credential of `user`, ended. Order matters under concurrency.

    Codes first: an exchange in flight holds its grant row locked
    (`validate_code`), so the DELETE waits for it, and the statements after it
    (each with a fresh snapshot, READ COMMITTED) see the tokens it minted.
    Families are revoked with DOT's `revoke_family`, which also deletes their
    access tokens and leaves a member rotated in meanwhile without one (refused
    at its next refresh). Then any access token left (client-side ones with no
    refresh token).
    """
    _, deleted = Grant.objects.filter(user=user).delete()
    codes = deleted.get(Grant._meta.label, 0)  # not their MAC rows (issue 12), deleted with them
    live = RefreshToken.objects.filter(user=user, revoked__isnull=True)
    families = {family for family in live.values_list("token_family", flat=True) if family is not None}
    refresh_tokens = live.count()
    access_tokens = AccessToken.objects.filter(user=user).count()
    for family in sorted(families, key=str):
        RefreshToken.revoke_family(family)
    for orphan in RefreshToken.objects.filter(user=user, revoked__isnull=True, token_family__isnull=True):
        orphan.revoke()
    AccessToken.objects.filter(user=user).delete()
    return SignOutSummary(
        refresh_token_families=len(families),
        refresh_tokens=refresh_tokens,
        access_tokens=access_tokens,
        unexchanged_codes=codes,
    )


def customer_sign_out_everywhere(*, user: User, actor: Actor, request: HttpRequest | None = None) -> SignOutSummary:
    """End every OAuth credential of the customer (refresh token families, access tokens, codes), audited.

    Web sessions end with the password change that comes with it
    (`customer_password_reset_complete`): each session stores a hash of the
    password and Django logs out any session whose hash no longer matches, at
    its next request. A caller that signs a customer out without changing
    their password must end their web sessions some other way.
    """
    summary = _oauth_credentials_revoke(user)
    audit_event_record(
        event_type="auth.signed_out_everywhere",
        outcome=AuditEvent.Outcome.SUCCESS,
        actor=actor,
        object_type=USER_OBJECT_TYPE,
        object_id=str(user.public_id),
        payload=asdict(summary),
        request=request,
    )
    return summary


def customer_password_reset_complete(
    *, user: User, token: str, password: str, request: HttpRequest | None = None
) -> SignOutSummary:
    """Set the customer's new password from a reset link, and sign them out everywhere, or change nothing.

    The token is checked again with the user's row locked: the first of two
    racing submits changes the password, which voids the token for the second
    (PasswordResetLinkInvalid). Raises django's ValidationError if the
    password fails the validators, PasswordResetNotAllowed if the account is
    no longer a customer's. After commit, OAuth credentials are swept once
    more: a token exchange that had already passed its checks when the
    password changed may have committed just after the first sweep.
    """
    password_validation.validate_password(password, user)
    actor = Actor(user=str(user.public_id))
    with transaction.atomic(durable=True):
        locked = User.objects.select_for_update().get(pk=user.pk)
        if not customer_reset_eligible(locked):
            raise PasswordResetNotAllowed()
        if not token or not default_token_generator.check_token(locked, token):
            raise PasswordResetLinkInvalid()
        locked.set_password(password)
        locked.save(update_fields=["password"])
        audit_event_record(
            event_type="auth.password_reset_completed",
            outcome=AuditEvent.Outcome.SUCCESS,
            actor=actor,
            object_type=USER_OBJECT_TYPE,
            object_id=str(locked.public_id),
            request=request,
        )
        summary = customer_sign_out_everywhere(user=locked, actor=actor, request=request)
    late = _oauth_credentials_revoke(locked)
    if any(asdict(late).values()):
        logger.warning("password reset: OAuth credentials issued during the reset were revoked: %s", asdict(late))
    user.password = locked.password  # the caller's instance no longer holds the old hash
    return summary
