"""Reads for people, scoped to the principal asking."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest

from accounts.exceptions import PiiFieldUnknown
from accounts.models import CustomerProfile, User
from audit.models import AuditEvent
from audit.services.events import PII_PURPOSES, Actor, audit_event_record, pii_read_record
from tokenvault.exceptions import CiphertextTampered, InvalidPurpose
from tokenvault.fields import field_open

# The encrypted identity fields of a profile; the only names `customer_pii_read` opens.
PII_FIELDS = frozenset({"full_name", "date_of_birth", "phone", "postal_address", "credit_score"})
# Not encrypted (it is the login), but PII all the same: shown in clear only through the same audited door.
CONTACT_FIELDS = frozenset({"email"})
PII_OBJECT_TYPE = "customer_profile"


def user_get_active(*, public_id) -> User | None:
    return User.objects.filter(public_id=public_id, is_active=True).first()


def public_id_parse(term: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(term.strip())
    except ValueError:
        return None


def user_exact_q(term: str, *, prefix: str = "") -> Q | None:
    """Users whose public id, or whose whole email, is `term`; None when it is neither. Never a substring.

    The admin's search over people: a substring search on emails would let
    anyone with a search box enumerate addresses letter by letter, so the
    email is normalised as it is stored (lowercased) and compared whole, on
    the unique column. `prefix` reaches the user through a relation
    ("owner__").
    """
    public_id = public_id_parse(term)
    if public_id is not None:
        return Q(**{f"{prefix}public_id": public_id})
    email = term.strip()
    if "@" not in email:
        return None
    return Q(**{f"{prefix}email": User.objects.normalize_email(email).lower()})


def customer_profile_get(*, user: User) -> CustomerProfile:
    """The caller's own profile; callers only ever pass the authenticated user."""
    return CustomerProfile.objects.select_related("user").get(user=user)


def email_masked(email: str) -> str:
    """`a***@example.com`: enough for a person to recognise their own address, not to harvest it."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "****"


def customer_pii_read(
    *,
    profile: CustomerProfile,
    fields: Iterable[str],
    purpose: str,
    actor: Actor,
    reason: str = "",
    request: HttpRequest | None = None,
) -> dict[str, Any]:
    """The clear values of some identity fields of one profile (and its email): the only door to them.

    Who may read whose profile is the caller's decision (the API passes the
    caller's own profile only). Every call appends a `pii.read` audit event
    naming the fields, the purpose and the reason, committed before any value
    is returned (its own savepoint, or its own transaction outside one). A
    ciphertext that fails authentication (altered, or copied from another row
    or column) is recorded as `pii.integrity_failure` and raises
    `CiphertextTampered`; nothing is returned. `email` (CONTACT_FIELDS) is
    read from the user row and recorded in the same event.
    """
    wanted = sorted(set(fields))
    if not wanted or not set(wanted) <= PII_FIELDS | CONTACT_FIELDS:
        raise PiiFieldUnknown(f"fields must be among {sorted(PII_FIELDS | CONTACT_FIELDS)}")
    if purpose not in PII_PURPOSES:
        raise InvalidPurpose(f"purpose must be one of {sorted(PII_PURPOSES)}")
    object_id = str(profile.user.public_id)
    try:
        values = {name: field_open(instance=profile, field_name=name) for name in wanted if name in PII_FIELDS}
    except CiphertextTampered:
        with transaction.atomic():
            audit_event_record(
                event_type="pii.integrity_failure",
                outcome=AuditEvent.Outcome.FAILURE,
                actor=actor,
                object_type=PII_OBJECT_TYPE,
                object_id=object_id,
                purpose=purpose,
                payload={"fields": wanted},
                request=request,
            )
        raise
    with transaction.atomic():
        pii_read_record(
            actor=actor,
            object_type=PII_OBJECT_TYPE,
            object_id=object_id,
            fields=wanted,
            purpose=purpose,
            request=request,
            reason=reason,
        )
    if "email" in wanted:
        values["email"] = profile.user.email
    return values


IDENTITY_DISPLAY_FIELDS = ["full_name", "date_of_birth", "phone", "postal_address"]


def _name_masked(full_name: str) -> str:
    """`Zoë Quintessa-Marlowe` -> `Z*** Q***`: the initials, so a person recognises their own record."""
    return " ".join(f"{part[:1]}***" for part in full_name.split())


def _phone_masked(phone: str) -> str:
    """`+447700900123` -> `+44•••••••123`: country code and last three digits, the usual OTP hint."""
    return phone[:3] + "•" * (len(phone) - 6) + phone[-3:]


def customer_identity_masked(
    *, profile: CustomerProfile, actor: Actor, request: HttpRequest | None = None
) -> dict[str, Any]:
    """The customer's own identity as masked fragments, for the customer (purpose `customer_request`).

    Never the national ID (not even a fragment: it is not in this database)
    nor the full date of birth: the birth year and the phone's last three
    digits are what a person needs to recognise their record. Decrypting is a
    `pii.read` like any other, so even the owner's reads are in the trail.
    """
    if profile.identity_captured_at is None:
        return {"captured": False}
    values = customer_pii_read(
        profile=profile, fields=IDENTITY_DISPLAY_FIELDS, purpose="customer_request", actor=actor, request=request
    )
    address = values["postal_address"]
    return {
        "captured": True,
        "captured_at": profile.identity_captured_at,
        "full_name": _name_masked(values["full_name"]),
        "birth_year": values["date_of_birth"].year,
        "phone": _phone_masked(values["phone"]),
        "address": {"country": address["country"], "postal_code": address["postal_code"][:2] + "•••"},
        "national_id_on_file": profile.national_id_token is not None,
    }
