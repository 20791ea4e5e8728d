"""Four-eyes kind `staff.access`: a person's roles, staff flags and single permissions, as one desired state.

The request carries the whole desired state, not a delta: what the approver
sees is exactly what the person will hold, and a change made meanwhile by
anyone (another approved request, the shell) voids it, because the state it
was asked against no longer hashes the same.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, Permission
from django.http import HttpRequest

from accounts.approvals.exceptions import ApprovalNothingToChange
from accounts.approvals.models import ApprovalRequest
from accounts.approvals.registry import ChangeKind, change_kind_register
from accounts.approvals.services import approval_request_create
from accounts.models import User
from accounts.roles import ROLE_PERMISSIONS
from fintech.problems import DomainError

KIND = "staff.access"
FLAGS = ("is_active", "is_staff", "is_superuser")


class AccessChangeInvalid(DomainError):
    code = "access_change_invalid"
    title = "The requested access is not valid"


def _user_locked(public_id: str) -> User | None:
    return User.objects.select_for_update().filter(public_id=public_id).first()


def access_state(user: User) -> dict[str, Any]:
    return {
        "roles": sorted(user.groups.values_list("name", flat=True)),
        "permissions": sorted(
            f"{app}.{codename}"
            for app, codename in user.user_permissions.values_list("content_type__app_label", "codename")
        ),
        **{flag: getattr(user, flag) for flag in FLAGS},
    }


def _target_state(public_id: str) -> dict[str, Any]:
    user = _user_locked(public_id)
    return {} if user is None else access_state(user)


def _permissions_resolve(codes: list[str]) -> list[Permission]:
    found = []
    for code in codes:
        app_label, _, codename = code.partition(".")
        permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
        if permission is None:
            raise AccessChangeInvalid(f"unknown permission: {code}")
        found.append(permission)
    return found


def _apply(approval: ApprovalRequest, approver: User) -> dict[str, Any]:
    user = _user_locked(approval.target_id)
    wanted = approval.change
    for flag in FLAGS:
        setattr(user, flag, bool(wanted[flag]))
    user.save(update_fields=list(FLAGS))
    user.groups.set(Group.objects.filter(name__in=wanted["roles"]))
    user.user_permissions.set(_permissions_resolve(wanted["permissions"]))
    return {"state": access_state(user)}


def staff_access_change_request(
    *,
    user: User,
    roles: list[str],
    permissions: list[str],
    is_active: bool,
    is_staff: bool,
    is_superuser: bool,
    requested_by: User,
    reason: str,
    request: HttpRequest | None = None,
) -> ApprovalRequest:
    """Ask for `user` to hold exactly this access; a second person with `approve_access_change` applies it."""
    unknown = sorted(set(roles) - set(ROLE_PERMISSIONS))
    if unknown:
        raise AccessChangeInvalid(f"unknown roles: {', '.join(unknown)}")
    _permissions_resolve(permissions)
    if (roles or permissions or is_superuser) and not is_staff:
        raise AccessChangeInvalid("roles and permissions are for staff: set is_staff too")
    change = {
        "roles": sorted(set(roles)),
        "permissions": sorted(set(permissions)),
        "is_active": is_active,
        "is_staff": is_staff,
        "is_superuser": is_superuser,
    }
    current = access_state(user)
    if change == current:
        raise ApprovalNothingToChange()
    differences = [
        f"{key}: {current[key]} -> {change[key]}"
        for key in ("roles", "permissions", *FLAGS)
        if current[key] != change[key]
    ]
    return approval_request_create(
        kind=KIND,
        target_type="accounts.user",
        target_id=str(user.public_id),
        change=change,
        summary=f"access of user {user.public_id}: " + "; ".join(differences),
        subject=user,
        requested_by=requested_by,
        reason=reason,
        request=request,
    )


def register() -> None:
    change_kind_register(
        ChangeKind(
            name=KIND,
            permission="accounts.approve_access_change",
            request_permission="accounts.change_user",
            target_state=_target_state,
            apply=_apply,
            label="Staff access (roles, flags, permissions)",
        )
    )
