"""Writes of four eyes: ask for a change, approve (and apply) it, reject it, expire what nobody decided.

Approving locks the request row, so two approvers racing apply it once; the
second gets `approval_not_pending`. The change is applied in the approval's
transaction with `fintech.approval_request` set (transaction-local) to the
request's id: the database's triggers on roles, permissions and staff flags
(issue 11) read it to tell an approved change from one made any other way.
Refused decisions are recorded in their own transaction, after the rollback.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.access_changes.authorization import approved_access_begin, approved_access_end
from accounts.approvals.exceptions import (
    ApprovalBySelfRefused,
    ApprovalChangeMismatch,
    ApprovalExpired,
    ApprovalNotAuthentic,
    ApprovalNotFound,
    ApprovalNotPending,
    ApprovalNotPermitted,
    ApprovalReasonRequired,
    ApprovalSecondFactorStale,
    ApprovalVoid,
)
from accounts.approvals.models import REASON_MAX_LENGTH, SUMMARY_MAX_LENGTH, ApprovalDecision, ApprovalRequest
from accounts.approvals.registry import change_kind_get
from accounts.models import User
from audit.models import AuditEvent
from audit.services.events import Actor, audit_event_record
from fintech.free_text import free_text_check
from fintech.macs import row_mac_matches, row_mac_of
from fintech.problems import DomainError

SECOND_FACTOR_MAX_AGE = timedelta(minutes=5)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def state_hash(state: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(state).encode()).hexdigest()


def change_hash_of(approval: ApprovalRequest) -> str:
    """What an approver approves: kind, target, the change, the target's state then, and whom it is about."""
    bound = {
        "kind": approval.kind,
        "target_type": approval.target_type,
        "target_id": approval.target_id,
        "change": approval.change,
        "target_state_hash": approval.target_state_hash,
        "subject": str(approval.subject.public_id) if approval.subject_id else "",
        "requested_by": str(approval.requested_by.public_id),
    }
    return state_hash(bound)


REQUEST_MAC_SALT = "accounts.approval.request/1"


def _request_values(approval: ApprovalRequest) -> list[Any]:
    return [
        str(approval.public_id), approval.kind, approval.target_type, approval.target_id, approval.change_hash,
        approval.target_state_hash, approval.requested_by_id, approval.subject_id, approval.expires_at.isoformat(),
    ]  # fmt: skip


def approval_request_sign(approval: ApprovalRequest) -> None:
    """Set the request's MAC (issue 12): the request as asked, under a key the database does not hold."""
    approval.request_mac = row_mac_of(REQUEST_MAC_SALT, _request_values(approval))


def approval_request_authentic(approval: ApprovalRequest) -> bool:
    """Whether the request was asked through this service, as it stands (who asked, what, about whom, until
    when): a row inserted or rewritten with the database login alone is not."""
    return row_mac_matches(approval.request_mac, REQUEST_MAC_SALT, _request_values(approval))


def _staff_actor(user: User) -> Actor:
    return Actor(staff=str(user.public_id))


def _reason_check(reason: str, field: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ApprovalReasonRequired()
    free_text_check(reason, field=field)
    return reason[:REASON_MAX_LENGTH]


def _event_payload(approval: ApprovalRequest, **extra: Any) -> dict[str, Any]:
    return {
        "kind": approval.kind,
        "target_type": approval.target_type,
        "target_id": approval.target_id,
        "change_hash": approval.change_hash,
        "requested_by": str(approval.requested_by.public_id),
        **({"subject": str(approval.subject.public_id)} if approval.subject_id else {}),
        **extra,
    }


def approval_request_create(
    *,
    kind: str,
    target_type: str,
    target_id: str,
    change: dict[str, Any],
    summary: str,
    requested_by: User,
    reason: str,
    subject: User | None = None,
    request: HttpRequest | None = None,
) -> ApprovalRequest:
    """Record a change for a second person to approve; nothing is changed yet."""
    definition = change_kind_get(kind)
    reason = _reason_check(reason, "reason")
    if not (requested_by.is_active and requested_by.is_staff and requested_by.has_perm(definition.request_permission)):
        raise ApprovalNotPermitted("You do not hold the permission to ask for this change")
    canonical = json.loads(canonical_json(change))  # what is stored is exactly what is hashed
    with transaction.atomic():
        approval = ApprovalRequest(
            kind=kind,
            summary=summary[:SUMMARY_MAX_LENGTH],
            target_type=target_type,
            target_id=str(target_id),
            change=canonical,
            target_state_hash=state_hash(definition.target_state(str(target_id))),
            subject=subject,
            requested_by=requested_by,
            request_reason=reason,
            expires_at=timezone.now() + timedelta(hours=settings.FOUR_EYES_REQUEST_TTL_HOURS),
        )
        approval.change_hash = change_hash_of(approval)
        approval_request_sign(approval)
        approval.save()
        audit_event_record(
            event_type="approval.requested",
            outcome=AuditEvent.Outcome.SUCCESS,
            actor=_staff_actor(requested_by),
            object_type="accounts.approvalrequest",
            object_id=str(approval.public_id),
            payload=_event_payload(approval, summary=approval.summary, reason=reason),
            request=request,
        )
    return approval


def _locked(public_id) -> ApprovalRequest:
    approval = (
        ApprovalRequest.objects.select_for_update(of=("self",))
        .select_related("requested_by", "subject")
        .filter(public_id=public_id)
        .first()
    )
    if approval is None:
        raise ApprovalNotFound()
    return approval


def _refusal_record(approval_id, approver: User, error: DomainError, request: HttpRequest | None) -> None:
    audit_event_record(
        event_type="approval.refused",
        outcome=AuditEvent.Outcome.FAILURE,
        actor=_staff_actor(approver),
        object_type="accounts.approvalrequest",
        object_id=str(approval_id),
        payload={"code": error.code},
        request=request,
    )


def _decision_recorded(approval: ApprovalRequest, status: str) -> bool:
    """Record that the request is decided; False when it was decided before (then set back to pending with the
    database login): it stays as it was decided. The row is write-once for the runtime role, unique per request."""
    if ApprovalDecision.objects.filter(approval_public_id=approval.public_id).exists():
        return False
    ApprovalDecision.objects.create(approval_public_id=approval.public_id, status=status)
    return True


def _decided_once(approval: ApprovalRequest, status: str) -> None:
    if not _decision_recorded(approval, status):
        raise ApprovalNotPending()


def _decider_check(approval: ApprovalRequest, approver: User, mfa_verified_at: datetime | None) -> None:
    if approval.status != ApprovalRequest.Status.PENDING:
        raise ApprovalNotPending()
    if approval.expires_at <= timezone.now():
        raise ApprovalExpired()
    if approver.pk in (approval.requested_by_id, approval.subject_id):
        raise ApprovalBySelfRefused()
    if not (approver.is_active and approver.is_staff):
        raise ApprovalNotPermitted()
    if mfa_verified_at is None or timezone.now() - mfa_verified_at > SECOND_FACTOR_MAX_AGE:
        raise ApprovalSecondFactorStale()


def approval_request_approve(
    *,
    approval_id,
    approver: User,
    change_hash: str,
    mfa_verified_at: datetime | None,
    reason: str = "",
    request: HttpRequest | None = None,
) -> ApprovalRequest:
    """Approve and apply, or refuse with a stable code (recorded as `approval.refused`) changing nothing.

    A request whose target changed, or whose change the owning domain now
    refuses (an account blocked meanwhile), becomes void: that is committed
    and reported as `approval_void`.
    """
    reason = (reason or "").strip()
    if reason:
        free_text_check(reason, field="reason")
    void: DomainError | None = None
    try:
        with transaction.atomic(durable=True):
            approval = _locked(approval_id)
            definition = change_kind_get(approval.kind)
            _decider_check(approval, approver, mfa_verified_at)
            if not approver.has_perm(definition.permission):
                raise ApprovalNotPermitted()
            if change_hash != approval.change_hash or change_hash_of(approval) != approval.change_hash:
                raise ApprovalChangeMismatch()
            if not approval_request_authentic(approval):
                raise ApprovalNotAuthentic()
            _decided_once(approval, "approved")
            approval.decided_by, approval.decided_at = approver, timezone.now()
            approval.decision_reason = reason[:REASON_MAX_LENGTH]
            if state_hash(definition.target_state(approval.target_id)) != approval.target_state_hash:
                void = ApprovalVoid()
                _void(approval, approver, {"reason": "target_changed"}, request)
            else:
                void = _apply(approval, approver, definition, request)
    except DomainError as error:
        if not isinstance(error, ApprovalNotFound):
            _refusal_record(approval_id, approver, error, request)
        raise
    if void is not None:
        raise void
    return approval


def _apply(approval: ApprovalRequest, approver: User, definition, request) -> DomainError | None:
    """Apply under a savepoint: a domain refusal rolls the change back and voids the request instead."""
    approval.status = ApprovalRequest.Status.APPLIED
    approval.save(update_fields=["status", "decided_by", "decided_at", "decision_reason"])
    approved_access_begin(approval.public_id, approval.subject_id)
    try:
        with transaction.atomic():
            result = definition.apply(approval, approver) or {}
    except DomainError as refused:
        _void(approval, approver, {"reason": "refused", "code": refused.code}, request)
        return ApprovalVoid(f"The change was refused when applied: {refused.code}")
    finally:
        approved_access_end()
    approval.result = json.loads(canonical_json(result))
    approval.save(update_fields=["result"])
    audit_event_record(
        event_type="approval.applied",
        outcome=AuditEvent.Outcome.SUCCESS,
        actor=_staff_actor(approver),
        object_type="accounts.approvalrequest",
        object_id=str(approval.public_id),
        payload=_event_payload(approval, result=approval.result, reason=approval.decision_reason),
        request=request,
    )
    return None


def _void(approval: ApprovalRequest, approver: User, result: dict[str, Any], request) -> None:
    approval.status = ApprovalRequest.Status.VOID
    approval.result = result
    approval.save(update_fields=["status", "decided_by", "decided_at", "decision_reason", "result"])
    audit_event_record(
        event_type="approval.void",
        outcome=AuditEvent.Outcome.FAILURE,
        actor=_staff_actor(approver),
        object_type="accounts.approvalrequest",
        object_id=str(approval.public_id),
        payload=_event_payload(approval, result=result),
        request=request,
    )


def approval_request_reject(
    *, approval_id, decider: User, reason: str, request: HttpRequest | None = None
) -> ApprovalRequest:
    """Turn a request down (anyone who could approve it), or withdraw it (its requester). Changes nothing else."""
    reason = _reason_check(reason, "reason")
    try:
        with transaction.atomic(durable=True):
            approval = _locked(approval_id)
            if approval.status != ApprovalRequest.Status.PENDING:
                raise ApprovalNotPending()
            withdrawing = decider.pk == approval.requested_by_id
            if not withdrawing:
                if decider.pk == approval.subject_id:
                    raise ApprovalBySelfRefused()
                if not (
                    decider.is_active
                    and decider.is_staff
                    and decider.has_perm(change_kind_get(approval.kind).permission)
                ):
                    raise ApprovalNotPermitted()
                approval.decided_by = decider
            _decided_once(approval, "withdrawn" if withdrawing else "rejected")
            approval.status = ApprovalRequest.Status.REJECTED
            approval.decided_at = timezone.now()
            approval.decision_reason = reason
            approval.save(update_fields=["status", "decided_by", "decided_at", "decision_reason"])
            audit_event_record(
                event_type="approval.withdrawn" if withdrawing else "approval.rejected",
                outcome=AuditEvent.Outcome.SUCCESS,
                actor=_staff_actor(decider),
                object_type="accounts.approvalrequest",
                object_id=str(approval.public_id),
                payload=_event_payload(approval, reason=reason),
                request=request,
            )
    except DomainError as error:
        if not isinstance(error, ApprovalNotFound):
            _refusal_record(approval_id, decider, error, request)
        raise
    return approval


def approval_requests_expire(*, now: datetime | None = None) -> int:
    """Mark pending requests past their time as expired (a scheduled job), each with a sealed event."""
    now = now or timezone.now()
    expired = 0
    with transaction.atomic():
        for approval in (
            ApprovalRequest.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("requested_by", "subject")
            .filter(status=ApprovalRequest.Status.PENDING, expires_at__lte=now)
            .order_by("expires_at")[:500]
        ):
            if not _decision_recorded(approval, "expired"):
                continue
            approval.status = ApprovalRequest.Status.EXPIRED
            approval.save(update_fields=["status"])
            audit_event_record(
                event_type="approval.expired",
                outcome=AuditEvent.Outcome.FAILURE,
                actor=Actor.system("approval_requests_expire"),
                object_type="accounts.approvalrequest",
                object_id=str(approval.public_id),
                payload=_event_payload(approval),
            )
            expired += 1
    return expired
