"""Writes for people: customers, staff roles. Each service is one atomic effect."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.exceptions import EmailAlreadyRegistered
from accounts.models import CustomerProfile, User
from accounts.roles import ROLE_PERMISSIONS


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


def roles_sync() -> None:
    """Make each role group hold exactly the permissions `ROLE_PERMISSIONS` declares."""
    with transaction.atomic():
        for role, codes in ROLE_PERMISSIONS.items():
            group, _ = Group.objects.get_or_create(name=role)
            wanted = []
            for code in sorted(codes):
                app_label, codename = code.split(".", 1)
                wanted.extend(Permission.objects.filter(content_type__app_label=app_label, codename=codename))
            group.permissions.set(wanted)
