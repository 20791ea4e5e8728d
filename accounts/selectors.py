"""Reads for people, scoped to the principal asking."""

from __future__ import annotations

from accounts.models import User


def user_get_active(*, public_id) -> User | None:
    return User.objects.filter(public_id=public_id, is_active=True).first()
