"""Writes for people: customers, staff roles. Each service is one atomic effect."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

import phonenumbers
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.exceptions import (
    EmailAlreadyRegistered,
    IdentityAlreadyCaptured,
    IdentityAttemptsExceeded,
    IdentityAttemptsUnavailable,
    InvalidIdentity,
    NationalIdInUse,
    PhoneInUse,
)
from accounts.models import CustomerProfile, User
from accounts.roles import ROLE_PERMISSIONS
from audit.models import AuditEvent
from audit.services.events import Actor, audit_event_record
from fintech.rate_limits import RateLimitUnavailable, rate_parse, sliding_window_take
from fintech.redis_client import redis_key
from tokenvault.fields import field_blind_index
from tokenvault.tokens import national_id_normalize


@contextmanager
def _email_conflicts_as_domain_error() -> Iterator[None]:
    """The friendly pre-check in full_clean can lose a race; the unique index cannot.

    Both outcomes become one domain error, so a racing duplicate looks exactly
    like an ordinary one to the caller.
    """
    try:
        yield
    except ValidationError as exc:
        if "email" in exc.message_dict or "accounts_user_email_ci_unique" in str(exc):
            raise EmailAlreadyRegistered() from exc
        raise
    except IntegrityError as exc:
        if "email" in str(exc):
            raise EmailAlreadyRegistered() from exc
        raise


def customer_create(*, email: str, password: str | None, tier: str = CustomerProfile.Tier.STANDARD) -> User:
    """Create a customer login and its profile together, or neither."""
    with _email_conflicts_as_domain_error(), transaction.atomic(durable=True):
        user = User.objects.create_user(email=email, password=password)
        CustomerProfile.objects.create(user=user, tier=tier)
    return user


def staff_create(*, email: str, password: str | None, roles: list[str]) -> User:
    """Create a staff member holding exactly the given roles."""
    unknown = set(roles) - set(ROLE_PERMISSIONS)
    if unknown:
        raise ValueError(f"Unknown staff roles: {sorted(unknown)}")
    with _email_conflicts_as_domain_error(), transaction.atomic(durable=True):
        user = User.objects.create_user(email=email, password=password, is_staff=True)
        user.groups.set(Group.objects.filter(name__in=roles))
    return user


ROLES_SYNC_SETTING = "fintech.roles_sync"


def roles_sync() -> None:
    """Make each role group hold exactly the permissions `ROLE_PERMISSIONS` declares.

    Says so to the database (`fintech.roles_sync`, transaction-local): its
    trigger records a role definition change as roles_sync's, approved, only
    when the session is also the owner role, as after migrate
    (accounts/sql/access_change_triggers.sql); from the runtime role it is an
    unapproved change like any other.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, 'on', true)", [ROLES_SYNC_SETTING])
        for role, codes in ROLE_PERMISSIONS.items():
            group, _ = Group.objects.get_or_create(name=role)
            wanted = []
            for code in sorted(codes):
                app_label, codename = code.split(".", 1)
                wanted.extend(Permission.objects.filter(content_type__app_label=app_label, codename=codename))
            group.permissions.set(wanted)
        # Off again before an enclosing transaction goes on (a failure rolls the setting back with the rest).
        cursor.execute("SELECT set_config(%s, '', true)", [ROLES_SYNC_SETTING])


# --- Identity capture at onboarding (issue 6) ---------------------------------------------------

IDENTITY_MINIMUM_AGE_YEARS = 18
IDENTITY_OLDEST_BIRTH_DATE = date(1900, 1, 1)
FULL_NAME_MAX_CHARS = 200
ADDRESS_LINE_MAX_CHARS = 100
ADDRESS_KEYS = {"line1", "line2", "city", "region", "postal_code", "country"}
PHONE_INPUT_MAX_CHARS = 32
_PHONE_INTERNATIONAL_DIGITS = re.compile(r"\+[0-9]+")
_PHONE_SEPARATORS = re.compile(r"[\s\-().]")
_PHONE_NOT_INTERNATIONAL = "phone must be an international number starting with +, such as +44 20 7946 0123"
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_POSTAL_CODE = re.compile(r"^[A-Z0-9][A-Z0-9 \-]{1,14}$")


@dataclass(frozen=True, slots=True)
class IdentityInput:
    """Validated, normalised identity. `national_id` is only ever handed to the vault, never stored here."""

    full_name: str
    date_of_birth: date
    phone: str  # E.164
    postal_address: dict[str, str]
    national_id: str

    def __repr__(self) -> str:  # a dataclass repr would print every value into tracebacks
        return "IdentityInput(****)"


def phone_e164_normalize(value: str) -> str:
    """`+44 (0)20 7946-0958` -> `+442079460958`, checked against libphonenumber's numbering plans.

    The result feeds the blind index (`phone_index`, unique among customers),
    so one line must give one form however it was typed: a shape check alone
    let `+44 020 …` (trunk 0 kept) and `+44 20 …` through as two numbers, and
    so two customers on one phone. No default region: only international input
    (`+`, or `00` read as `+`) is taken, as a national number's country would
    be a guess. Only digits reach the parser, which would otherwise turn
    letters into keypad digits and drop extensions (two spellings, one index).
    No detail echoes the number.
    """
    if not isinstance(value, str) or len(value) > PHONE_INPUT_MAX_CHARS:
        raise InvalidIdentity(_PHONE_NOT_INTERNATIONAL)
    compact = _PHONE_SEPARATORS.sub("", value)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if not _PHONE_INTERNATIONAL_DIGITS.fullmatch(compact):
        raise InvalidIdentity(_PHONE_NOT_INTERNATIONAL)
    try:
        number = phonenumbers.parse(compact, None)
    except phonenumbers.NumberParseException:
        raise InvalidIdentity(_PHONE_NOT_INTERNATIONAL) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidIdentity("phone is not a valid number in its country's numbering plan")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _text(value: object, *, name: str, max_chars: int, required: bool = True) -> str:
    if not isinstance(value, str):
        raise InvalidIdentity(f"{name} must be text")
    cleaned = " ".join(unicodedata.normalize("NFC", value).split())
    if required and not cleaned:
        raise InvalidIdentity(f"{name} is required")
    if len(cleaned) > max_chars or any(unicodedata.category(char).startswith("C") for char in cleaned):
        raise InvalidIdentity(f"{name} must be at most {max_chars} printable characters")
    return cleaned


def _years_between(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def identity_validate(
    *,
    full_name: str,
    date_of_birth: date,
    phone: str,
    postal_address: dict,
    national_id: str,
    today: date | None = None,
) -> IdentityInput:
    """Every identity rule in one place; `InvalidIdentity` (400) or the vault's `InvalidNationalId` (400)."""
    today = today or timezone.localdate()
    name = _text(full_name, name="full_name", max_chars=FULL_NAME_MAX_CHARS)
    if not isinstance(date_of_birth, date) or not IDENTITY_OLDEST_BIRTH_DATE <= date_of_birth < today:
        raise InvalidIdentity("date_of_birth must be a date in the past")
    if _years_between(date_of_birth, today) < IDENTITY_MINIMUM_AGE_YEARS:
        raise InvalidIdentity(f"customers must be at least {IDENTITY_MINIMUM_AGE_YEARS} years old")
    if not isinstance(postal_address, dict) or set(postal_address) - ADDRESS_KEYS:
        raise InvalidIdentity(f"address takes only {sorted(ADDRESS_KEYS)}")
    address = {
        key: _text(postal_address.get(key, ""), name=f"address.{key}", max_chars=ADDRESS_LINE_MAX_CHARS,
                   required=key in {"line1", "city", "postal_code", "country"})
        for key in sorted(ADDRESS_KEYS)
    }  # fmt: skip
    address = {key: text for key, text in address.items() if text}
    address["country"] = address["country"].upper()
    address["postal_code"] = address["postal_code"].upper()
    if not _COUNTRY.match(address["country"]):
        raise InvalidIdentity("address.country must be an ISO 3166-1 alpha-2 code")
    if not _POSTAL_CODE.match(address["postal_code"]):
        raise InvalidIdentity("address.postal_code is not valid")
    return IdentityInput(
        full_name=name,
        date_of_birth=date_of_birth,
        phone=phone_e164_normalize(phone),
        postal_address=address,
        national_id=national_id_normalize(national_id),
    )


def _identity_attempt_take(*, user_public_id: str) -> None:
    """Count one capture attempt that reaches the vault, per customer, in a Redis sliding window.

    Each refused attempt tells whether a national ID (or phone) is some
    customer's, and vaults a value: without a bound, one account could probe
    IDs at will. An honest customer needs a handful (typos). Redis down:
    503, never unbounded probing.
    """
    rate = rate_parse(settings.IDENTITY_CAPTURE_ATTEMPT_RATE)
    try:
        decision = sliding_window_take(key=redis_key("identity-capture", user_public_id), rate=rate, cost=1)
    except RateLimitUnavailable:
        raise IdentityAttemptsUnavailable() from None
    if not decision.allowed:
        raise IdentityAttemptsExceeded(
            f"at most {rate.limit} attempts per {rate.window_seconds} seconds",
            headers={"Retry-After": str(decision.retry_after_seconds)},
        )


def identity_national_id_tokenize(*, identity: IdentityInput, actor: Actor, client=None) -> str:
    """The vault's convergent token for the national ID: the same person always gets the same token.

    Called BEFORE the database transaction (a network call must not hold row
    locks). If the write then fails, the token stays in the vault unused: it is
    never shredded here, because a convergent token may already belong to
    another customer's identity (ADR 0013). `VaultUnavailable` (503) when the
    vault cannot be reached; nothing has been written then.
    """
    from tokenvault.client import vault_client

    _identity_attempt_take(user_public_id=actor.user)
    tokenized = (client or vault_client()).tokenize(
        token_type="national_id",  # noqa: S106  # nosec B106 - a token type, not a secret
        value=identity.national_id,
        actor=actor,
        convergent=True,
    )
    return tokenized.token


def customer_identity_capture(
    *, user: User, identity: IdentityInput, national_id_token: str | None, actor: Actor
) -> CustomerProfile:
    """Store the customer's identity, encrypted, once; refuse a national ID or phone another customer holds.

    Identity cannot be changed through this call once captured
    (`identity_already_captured`): a correction is a reviewed staff process.
    The profile row is locked first, so two captures for one customer
    serialise; the unique indexes on `national_id_token` and `phone_index`
    decide between two customers racing with the same ID or phone, and the
    loser gets the same answer as an ordinary duplicate. Nothing says which
    customer holds the ID. Non-durable (ADR 0009): the idempotency layer wraps it.
    """
    try:
        with transaction.atomic():
            profile = CustomerProfile.objects.select_for_update(of=("self",)).select_related("user").get(user=user)
            if profile.identity_captured_at is not None:
                raise IdentityAlreadyCaptured()
            if national_id_token is None:
                raise ValueError("national_id_token is required for a first capture")
            phone_index = field_blind_index(kind="phone", normalized_value=identity.phone)
            others = CustomerProfile.objects.exclude(pk=profile.pk)
            if others.filter(national_id_token=national_id_token).exists():
                raise NationalIdInUse()
            if others.filter(phone_index=phone_index).exists():
                raise PhoneInUse()
            profile.full_name = identity.full_name
            profile.date_of_birth = identity.date_of_birth
            profile.phone = identity.phone
            profile.phone_index = phone_index
            profile.postal_address = identity.postal_address
            profile.national_id_token = national_id_token
            profile.identity_captured_at = timezone.now()
            profile.save()
            audit_event_record(
                event_type="identity.captured",
                outcome=AuditEvent.Outcome.SUCCESS,
                actor=actor,
                object_type="customer_profile",
                object_id=str(user.public_id),
                payload={"country": identity.postal_address["country"]},
            )
    except IntegrityError as exc:
        constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", "") or ""
        if "national_id_token" in constraint:
            raise NationalIdInUse() from None
        if "phone_index" in constraint:
            raise PhoneInUse() from None
        raise
    return profile


CREDIT_SCORE_RANGE = (300, 850)


def customer_credit_score_set(*, user: User, score: int, actor: Actor) -> CustomerProfile:
    """Record a bureau credit score for the customer, encrypted like the rest of their identity.

    Staff or a scheduled bureau sync call this, never the customer. The audit
    row says that the score changed and who changed it, never the score.
    """
    low, high = CREDIT_SCORE_RANGE
    if type(score) is not int or not low <= score <= high:
        raise InvalidIdentity(f"credit_score must be an integer from {low} to {high}")
    with transaction.atomic():
        profile = CustomerProfile.objects.select_for_update(of=("self",)).select_related("user").get(user=user)
        profile.credit_score = score
        profile.save(update_fields=["credit_score", "updated_at"])
        audit_event_record(
            event_type="credit_score.recorded",
            outcome=AuditEvent.Outcome.SUCCESS,
            actor=actor,
            object_type="customer_profile",
            object_id=str(user.public_id),
        )
    return profile
