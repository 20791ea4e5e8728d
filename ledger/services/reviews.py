"""Review cases: opened by the policy step, decided by a compliance officer, escalated when nobody does.

Opening happens inside the movement's transaction (the transfer function
opens its own in SQL; holds, credit charges and refunds call
`review_case_open`). A decision locks, in the ledger's order (accounts, holds,
then the case), so two officers deciding at once produce one decision and a
`review_case_already_decided` for the other.

* flagged movement (posted): approving or rejecting records the decision;
  a rejection never reverses the posted transfer by itself (that is a
  separate, deliberate act).
* held movement: approving posts what was held (re-checking that neither
  customer is blocked; the money is already reserved) under the public id
  the customer was promised; rejecting releases it, spend counter included.
  A held authorisation becomes capturable on approval, voided on rejection.
* a blocked subject's cases can only be rejected.

The customer is told "posted" or "not executed", never that a case exists.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import CustomerProfile, User
from audit.alerts import alert_raise
from audit.services.events import Actor
from ledger import notifications
from ledger.authorization import case_decision_mac
from ledger.exceptions import (
    AccountNotActive,
    LedgerInvariantViolation,
    ReviewApprovalNeedsSecondOfficer,
    ReviewCaseAlreadyDecided,
    ReviewCaseNotFound,
    ReviewDecisionForbidden,
    ReviewDecisionNotAllowed,
)
from ledger.lock_objects import accounts_lock, holds_lock, review_cases_lock
from ledger.models import Hold, LedgerAccount, ReviewCase, Transfer
from ledger.services.core import audit_record, hold_release, ledger_event, movement_post, reason_check
from ledger.services.policy import Movement, movement_policy_check

MAX_CASES_ESCALATED_PER_RUN = 500
# Checked here, not only by the admin view, so every door that decides a case has the same lock.
DECIDE_PERMISSION = "ledger.decide_reviewcase"


def _case_payload(case: ReviewCase, **extra) -> dict:
    return {
        "case": str(case.public_id),
        "kind": case.kind,
        "status": case.status,
        "reasons": list(case.reasons),
        "amount_minor": case.amount_minor,
        "currency": case.currency,
        "transfer": str(case.transfer.public_id) if case.transfer_id else None,
        "hold": str(case.hold.public_id) if case.hold_id else None,
        **extra,
    }


def review_case_open(
    *,
    transfer: Transfer | None = None,
    hold: Hold | None = None,
    blocking: bool,
    reasons: list[str],
    subject_id: int | None,
    actor: Actor,
) -> ReviewCase:
    """Open a case about a posted transfer (never blocking) or a hold (blocking: nothing moves until approved)."""
    if (transfer is None) == (hold is None) or (blocking and hold is None) or not reasons:
        raise ValueError("a review case is about one transfer or one hold, and names its reasons")
    subject = transfer or hold
    case = ReviewCase.objects.create(
        kind=ReviewCase.Kind.HELD_MOVEMENT if blocking else ReviewCase.Kind.FLAGGED_MOVEMENT,
        transfer=transfer,
        hold=hold,
        subject_id=subject_id,
        reasons=list(reasons),
        amount_minor=subject.amount_minor,
        currency=subject.currency,
    )
    return review_case_opened(case, actor=actor)


def review_case_opened(case: ReviewCase, *, actor: Actor) -> ReviewCase:
    """The trail's record of a case just opened, by this code or by a ledger function (holds open their own)."""
    audit_record(
        event_type="ledger.review_case.opened",
        actor=actor,
        object_type="ledger.review_case",
        object_id=case.public_id,
        payload=_case_payload(case),
    )
    return case


def review_approval_needs_second_officer(case: ReviewCase) -> bool:
    """Approving a case above its currency's four-eyes amount (or in a currency without one) takes two officers."""
    threshold = settings.FOUR_EYES_REVIEW_APPROVAL_THRESHOLDS_MINOR.get(case.currency)
    return threshold is None or case.amount_minor > threshold


def review_case_decide(
    *,
    case_public_id,
    approve: bool,
    reason: str,
    officer: User,
    request=None,
    second_officer_of: User | None = None,
) -> ReviewCase:
    """Approve or reject an open case as `officer` (a compliance officer; the admin checks the permission).

    Errors: review_decision_forbidden (not an active staff member with
    `ledger.decide_reviewcase`, or the officer's own case),
    review_case_not_found, review_case_already_decided,
    review_decision_not_allowed (a blocked customer's case can only be
    rejected), reason_required.
    """
    reason = reason_check(reason)
    if not (officer.is_active and officer.is_staff and officer.has_perm(DECIDE_PERMISSION)):
        raise ReviewDecisionForbidden()
    actor = Actor(staff=str(officer.public_id))
    case = ReviewCase.objects.select_related("hold").filter(public_id=case_public_id).first()
    if case is None:
        raise ReviewCaseNotFound()
    if {officer.pk, getattr(second_officer_of, "pk", None)} & _owners_involved(case):
        raise ReviewDecisionForbidden("Nobody decides a case about money they send or receive.")
    if approve and second_officer_of is None and review_approval_needs_second_officer(case):
        raise ReviewApprovalNeedsSecondOfficer()
    with transaction.atomic():
        hold = case.hold
        if hold is not None:
            accounts = accounts_lock([hold.account_id, hold.destination_id])
            hold = holds_lock([hold.pk])[hold.pk]
        locked = review_cases_lock([case.pk])[case.pk]
        if locked.status != ReviewCase.Status.OPEN:
            raise ReviewCaseAlreadyDecided()
        if approve and CustomerProfile.objects.filter(user_id=locked.subject_id).exclude(status="active").exists():
            raise ReviewDecisionNotAllowed()
        posted = None
        locked.status = ReviewCase.Status.APPROVED if approve else ReviewCase.Status.REJECTED
        locked.decided_by, locked.decided_at, locked.decision_reason = officer, timezone.now(), reason
        locked.decision_mac = case_decision_mac(locked)  # what ties the decision to this officer (issue 12)
        # Saved before the held movement posts: ledger_movement_post posts a review hold only once approved.
        locked.save(update_fields=["status", "decided_by", "decided_at", "decision_reason", "decision_mac"])
        if hold is not None and hold.status == Hold.Status.ACTIVE:
            source, destination = accounts[hold.account_id], accounts[hold.destination_id]
            if not approve:
                hold_release(
                    hold,
                    source,
                    status=Hold.Status.VOIDED,
                    event=ledger_event(
                        event_type="ledger.hold.voided",
                        actor=actor,
                        payload={"review_case": str(locked.public_id)},
                        request=request,
                    ),
                )
            elif hold.purpose == Hold.Purpose.REVIEW:
                posted = _held_movement_post(hold=hold, source=source, destination=destination, actor=actor)
        if posted is not None:
            locked.transfer = posted  # the case leads to what its approval posted
            locked.save(update_fields=["transfer"])
        audit_record(
            event_type=f"ledger.review_case.{locked.status}",
            actor=actor,
            object_type="ledger.review_case",
            object_id=locked.public_id,
            payload=_case_payload(
                locked, reason=reason, posted_transfer=str(posted.public_id) if posted is not None else None
            ),
            request=request,  # the officer's address and browser, as for every staff action on record
        )
    return locked


def _owners_involved(case: ReviewCase) -> set[int]:
    """The customers on either side of the case's money: its subject, the payer and the payee."""
    accounts = LedgerAccount.objects.none()
    if case.hold_id is not None:
        accounts = LedgerAccount.objects.filter(pk__in=[case.hold.account_id, case.hold.destination_id])
    elif case.transfer_id is not None:
        accounts = LedgerAccount.objects.filter(postings__transfer_id=case.transfer_id)
    return {case.subject_id, *accounts.exclude(owner=None).values_list("owner_id", flat=True)}


def _held_movement_post(*, hold: Hold, source, destination, actor: Actor) -> Transfer:
    """Post a review hold in full, as the movement the customer asked for, under the id they were given."""
    try:
        movement_policy_check(
            movement=Movement.CAPTURE,
            sender_id=source.owner_id,
            receiver_id=destination.owner_id,
            currency=hold.currency,
            amount_minor=hold.amount_minor,
        )
    except AccountNotActive as refused:
        raise ReviewDecisionNotAllowed() from refused
    if source.status != "active" or destination.status != "active":
        raise ReviewDecisionNotAllowed()
    if hold.captured_minor != 0:
        raise LedgerInvariantViolation(f"{hold}: a review hold is posted whole, once")
    event = "ledger.transfer.posted" if hold.movement_kind == Transfer.Kind.TRANSFER else "ledger.credit_charge.posted"
    transfer = movement_post(
        kind=hold.movement_kind,
        debit=source,
        credit=destination,
        currency=hold.currency,
        amount_minor=hold.amount_minor,
        public_id=hold.transfer_public_id,
        reference=hold.reference,
        initiated_by_id=hold.created_by_id,
        client_id=hold.client_id,
        hold=hold,
        event=ledger_event(event_type=event, actor=actor, payload={"approved_review_hold": str(hold.public_id)}),
    )
    hold.captured_minor, hold.status = hold.amount_minor, Hold.Status.CAPTURED
    notifications.transfer_posted(transfer)
    return transfer


def review_cases_escalate(*, now: datetime | None = None) -> int:
    """Escalate open cases older than LEDGER_REVIEW_ESCALATE_AFTER_HOURS, once each; never decide them.

    Returns how many were escalated. Each escalation is an alert
    (`audit.alerts.alert_raise`): a sealed event, an email to the compliance
    officers through the outbox, a Prometheus counter.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.LEDGER_REVIEW_ESCALATE_AFTER_HOURS)
    candidates = list(
        ReviewCase.objects.filter(status=ReviewCase.Status.OPEN, escalated_at__isnull=True, opened_at__lte=cutoff)
        .order_by("opened_at", "id")
        .values_list("id", flat=True)[:MAX_CASES_ESCALATED_PER_RUN]
    )
    escalated = 0
    for case_id in candidates:
        with transaction.atomic():
            # Only the run that flips escalated_at alerts: two beat workers never alert twice.
            updated = ReviewCase.objects.filter(
                pk=case_id, status=ReviewCase.Status.OPEN, escalated_at__isnull=True
            ).update(escalated_at=now)
            if not updated:
                continue
            case = ReviewCase.objects.get(pk=case_id)
            alert_raise(
                kind="review_case_overdue",
                summary=f"Review case {case.public_id} has been open since {case.opened_at.isoformat()}",
                object_type="ledger.review_case",
                object_id=str(case.public_id),
                role="compliance_officer",
                actor=Actor.system("review_escalation"),
            )
            escalated += 1
    return escalated
