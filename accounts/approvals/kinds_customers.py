"""Four-eyes kinds about customers: their status and tier, and recovering a lost second factor.

`customer.profile`: unblocking a customer or changing their tier (which sets
their limits) takes two people; blocking is protective and stays immediate
(the admin saves it at once, on record through django-auditlog).

`customer.second_factor_reset`: a customer who lost their authenticator and
their recovery codes. Never by an email link alone (that would turn step-up
into email access): one staff member checks the person's identity and asks,
a compliance officer approves, and then nothing leaves the customer for 24
hours (`sending_paused_until`, enforced by the ledger's policy step), so a
reset obtained by fooling the identity check is visible to the real customer
before money can move.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.approvals.exceptions import ApprovalNothingToChange
from accounts.approvals.kinds_staff import staff_sessions_end
from accounts.approvals.models import ApprovalRequest
from accounts.approvals.registry import ChangeKind, change_kind_register
from accounts.approvals.services import approval_request_create
from accounts.models import CustomerProfile, User
from accounts.password_reset import customer_sign_out_everywhere
from audit.models import AuditEvent
from audit.services.events import Actor, audit_event_record

PROFILE = "customer.profile"
SECOND_FACTOR_RESET = "customer.second_factor_reset"
SENDING_PAUSE = timedelta(hours=24)
PROFILE_FIELDS = ("status", "tier")


def _profile_locked(public_id: str) -> CustomerProfile | None:
    return (
        CustomerProfile.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(user__public_id=public_id)
        .first()
    )


def _profile_state(public_id: str) -> dict[str, Any]:
    profile = _profile_locked(public_id)
    return {} if profile is None else {field: getattr(profile, field) for field in PROFILE_FIELDS}


def _profile_apply(approval: ApprovalRequest, approver: User) -> dict[str, Any]:
    profile = _profile_locked(approval.target_id)
    for field in PROFILE_FIELDS:
        setattr(profile, field, approval.change[field])
    profile.full_clean(exclude=["user"])
    profile.save(update_fields=[*PROFILE_FIELDS, "updated_at"])
    return {field: getattr(profile, field) for field in PROFILE_FIELDS}


# From least to most restricted: only a move to the right is protective.
STATUS_RESTRICTION = {"active": 0, "blocked": 1, "closed": 2}


def profile_change_needs_second_person(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Blocking or closing alone is protective and immediate; anything else that changes takes two people.

    Closed -> blocked reopens an account (found in review), so it is not protective.
    """
    if before == after:
        return False
    tighter = STATUS_RESTRICTION[after["status"]] > STATUS_RESTRICTION[before["status"]]
    return not (before["tier"] == after["tier"] and tighter)


def customer_status_restrict(
    *, profile: CustomerProfile, staff: User, reason: str, request: HttpRequest | None = None
) -> bool:
    """Block or close `profile` (as edited, unsaved) at once if that is all that changed; False otherwise.

    Protective, so one person may; the reason goes into the sealed trail with the staff member's name.
    """
    with transaction.atomic():
        locked = _profile_locked(str(profile.user.public_id))
        before = {field: getattr(locked, field) for field in PROFILE_FIELDS}
        after = {field: getattr(profile, field) for field in PROFILE_FIELDS}
        if before == after or profile_change_needs_second_person(before, after):
            return False
        locked.status = after["status"]
        locked.save(update_fields=["status", "updated_at"])
        audit_event_record(
            event_type=f"customer.{after['status']}",
            outcome=AuditEvent.Outcome.SUCCESS,
            actor=Actor(staff=str(staff.public_id)),
            object_type="accounts.user",
            object_id=str(profile.user.public_id),
            payload={"from": before["status"], "to": after["status"], "reason": reason},
            request=request,
        )
    return True


def customer_profile_change_request(
    *, profile: CustomerProfile, requested_by: User, reason: str, request: HttpRequest | None = None
) -> ApprovalRequest:
    """`profile` as staff edited it (unsaved): its status and tier, for a compliance officer to approve."""
    public_id = str(profile.user.public_id)
    current = _profile_state(public_id)
    change = {field: getattr(profile, field) for field in PROFILE_FIELDS}
    if change == current:
        raise ApprovalNothingToChange()
    moves = [
        f"{field} {current[field]} -> {change[field]}" for field in PROFILE_FIELDS if current[field] != change[field]
    ]
    return approval_request_create(
        kind=PROFILE,
        target_type="accounts.customerprofile",
        target_id=public_id,
        change=change,
        summary=f"customer {public_id}: " + ", ".join(moves),
        subject=profile.user,
        requested_by=requested_by,
        reason=reason,
        request=request,
    )


def _factor_state(public_id: str) -> dict[str, Any]:
    profile = _profile_locked(public_id)
    if profile is None:
        return {}
    user = profile.user
    return {
        "status": profile.status,
        "authenticators": sorted(TOTPDevice.objects.filter(user=user).values_list("id", flat=True)),
        "recovery_codes": sorted(StaticDevice.objects.filter(user=user).values_list("id", flat=True)),
    }


def _factor_reset_apply(approval: ApprovalRequest, approver: User) -> dict[str, Any]:
    profile = _profile_locked(approval.target_id)
    user = profile.user
    actor = Actor(staff=str(approver.public_id))
    authenticators, _ = TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    signed_out = customer_sign_out_everywhere(user=user, actor=actor)
    sessions = staff_sessions_end(user)
    profile.sending_paused_until = timezone.now() + SENDING_PAUSE
    profile.save(update_fields=["sending_paused_until", "updated_at"])
    audit_event_record(
        event_type="customer.second_factor_reset",
        outcome=AuditEvent.Outcome.SUCCESS,
        actor=actor,
        object_type="accounts.user",
        object_id=str(user.public_id),
        payload={
            "approval": str(approval.public_id),
            "sending_paused_until": profile.sending_paused_until.isoformat(),
            "web_sessions_ended": sessions,
            "refresh_token_families_revoked": signed_out.refresh_token_families,
        },
    )
    return {
        "authenticators_removed": authenticators,
        "web_sessions_ended": sessions,
        "sending_paused_until": profile.sending_paused_until.isoformat(),
    }


def customer_second_factor_reset_request(
    *, customer: User, requested_by: User, reason: str, request: HttpRequest | None = None
) -> ApprovalRequest:
    """Ask for a customer's second factor to be removed after checking their identity; `reason` says how."""
    if not CustomerProfile.objects.filter(user=customer).exists():
        raise ApprovalNothingToChange("Only a customer's second factor is reset this way.")
    return approval_request_create(
        kind=SECOND_FACTOR_RESET,
        target_type="accounts.user",
        target_id=str(customer.public_id),
        change={"second_factor": "remove", "sending_paused_hours": int(SENDING_PAUSE.total_seconds() // 3600)},
        summary=f"reset the second factor of customer {customer.public_id} (then 24 h without payments)",
        subject=customer,
        requested_by=requested_by,
        reason=reason,
        request=request,
    )


def register() -> None:
    approver, requester = "accounts.approve_customer_change", "accounts.change_customerprofile"
    change_kind_register(
        ChangeKind(PROFILE, approver, requester, _profile_state, _profile_apply, "Customer status or tier")
    )
    change_kind_register(
        ChangeKind(
            SECOND_FACTOR_RESET,
            approver,
            requester,
            _factor_state,
            _factor_reset_apply,
            "Customer second-factor reset after an identity check",
        )
    )
