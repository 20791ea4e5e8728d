"""Reads for people, scoped to the principal asking."""

from __future__ import annotations

from accounts.models import CustomerProfile, User


def user_get_active(*, public_id) -> User | None:
    return User.objects.filter(public_id=public_id, is_active=True).first()


def customer_profile_get(*, user: User) -> CustomerProfile:
    """The caller's own profile; callers only ever pass the authenticated user."""
    return CustomerProfile.objects.select_related("user").get(user=user)


def email_masked(email: str) -> str:
    """`a***@example.com`: enough for a person to recognise their own address, not to harvest it."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "****"
