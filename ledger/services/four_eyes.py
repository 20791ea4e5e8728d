"""The ledger's four-eyes kinds (ADR 0015): large or cumulative manual deposits, limits, rules, big review approvals.

Registered with `accounts.approvals` from LedgerConfig.ready(). What a single
operator may do alone is bounded twice: one deposit above its currency's
amount, or the operator's deposits of the day (UTC) together above the daily
total, needs a second operator — so ten small deposits are no way around one
large one. The operator's user row is locked while the day's total is read,
so concurrent deposits by one operator are counted one after another.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.forms.models import model_to_dict

from accounts.approvals.exceptions import ApprovalNothingToChange
from accounts.approvals.models import ApprovalRequest
from accounts.approvals.registry import ChangeKind, change_kind_register
from accounts.approvals.services import approval_request_create
from accounts.models import User
from audit.services.events import Actor
from ledger.currencies import format_amount
from ledger.models import LedgerAccount, ReviewCase, Transfer, TransferLimit, TransferRule
from ledger.services.funding import deposit_from_funding
from ledger.services.reviews import review_case_decide

DEPOSIT = "ledger.deposit"
LIMIT = "ledger.transfer_limit"
RULE = "ledger.transfer_rule"
REVIEW_APPROVAL = "ledger.review_approval"
LIMIT_FIELDS = ("tier", "currency", "per_transfer_max_minor", "daily_outgoing_max_minor")
RULE_FIELDS = ("name", "kind", "currency", "threshold_minor", "max_count", "window_minutes", "action", "active")


# --- deposits --------------------------------------------------------------------------------


def _operator_deposited_today_minor(operator: User, currency: str) -> int:
    day_start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    total = Transfer.objects.filter(
        kind=Transfer.Kind.DEPOSIT, initiated_by=operator, currency=currency, created_at__gte=day_start
    ).aggregate(total=Sum("amount_minor"))["total"]
    return total or 0


def deposit_needs_second_operator(*, operator: User, currency: str, amount_minor: int) -> bool:
    """Above the single-deposit amount, or the day's deposits with this one above the daily total (call locked)."""
    single = settings.FOUR_EYES_DEPOSIT_THRESHOLDS_MINOR.get(currency)
    daily = settings.FOUR_EYES_DEPOSIT_DAILY_TOTALS_MINOR.get(currency)
    if single is None or daily is None or amount_minor > single:
        return True
    return _operator_deposited_today_minor(operator, currency) + amount_minor > daily


def deposit_by_operator(
    *, account: LedgerAccount, amount_minor: int, reason: str, operator: User
) -> Transfer | ApprovalRequest:
    """Deposit now if this operator may alone; otherwise record a request a second operator approves in the admin."""
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=operator.pk).first()  # one operator's deposits, one at a time
        if not deposit_needs_second_operator(operator=operator, currency=account.currency, amount_minor=amount_minor):
            return deposit_from_funding(
                account=account,
                amount_minor=amount_minor,
                reason=reason,
                actor=Actor(staff=str(operator.public_id)),
                initiated_by=operator,
            )
        return approval_request_create(
            kind=DEPOSIT,
            target_type="ledger.account",
            target_id=str(account.public_id),
            change={"amount_minor": amount_minor, "currency": account.currency, "reason": reason},
            summary=f"deposit {format_amount(amount_minor, account.currency)} {account.currency}"
            f" into account {account.public_id}",
            requested_by=operator,
            reason=reason,
        )


def _account_state(public_id: str) -> dict[str, Any]:
    account = LedgerAccount.objects.filter(public_id=public_id).values("status", "currency", "kind").first()
    return account or {}


def _deposit_apply(approval: ApprovalRequest, approver: User) -> dict[str, Any]:
    account = LedgerAccount.objects.get(public_id=approval.target_id)
    change = approval.change
    transfer = deposit_from_funding(
        account=account,
        amount_minor=int(change["amount_minor"]),
        reason=change["reason"],
        actor=Actor(staff=str(approver.public_id)),
        initiated_by=approval.requested_by,
    )
    return {"transfer": str(transfer.public_id)}


# --- limits and rules ------------------------------------------------------------------------


def _row_state(model, fields: tuple[str, ...], target_id: str) -> dict[str, Any]:
    if not target_id.isdigit():
        return {}
    row = model.objects.select_for_update().filter(pk=int(target_id)).first()
    return {} if row is None else model_to_dict(row, fields=fields)


def _row_apply(model, fields: tuple[str, ...], approval: ApprovalRequest) -> dict[str, Any]:
    row = model() if not approval.target_id.isdigit() else model.objects.get(pk=int(approval.target_id))
    for field in fields:
        setattr(row, field, approval.change[field])
    row.full_clean()
    row.save()
    return {"id": row.pk}


def _shown(value, field: str, currency: str) -> str:
    """An amount in major units with its currency, as the approver thinks of it; anything else as it is."""
    if value is None:
        return "none"
    if field.endswith("_minor") and currency:
        return f"{format_amount(value, currency)} {currency}"
    return str(value)


def row_change_request(*, row, requested_by: User, reason: str, request=None) -> ApprovalRequest:
    """A limit or rule as staff want it (a new row or an edit), for a second operator to approve."""
    model, fields, kind = (TransferLimit, LIMIT_FIELDS, LIMIT) if isinstance(row, TransferLimit) else (
        TransferRule, RULE_FIELDS, RULE)  # fmt: skip
    change = model_to_dict(row, fields=fields)
    target = str(row.pk) if row.pk else "new"
    label = f"{row.tier} {row.currency}" if model is TransferLimit else f"rule {row.name!r}"
    before = _row_state(model, fields, target)
    if before == change:
        raise ApprovalNothingToChange()
    moves = [
        f"{field.removesuffix('_minor')} {_shown(before.get(field), field, row.currency)} -> "
        f"{_shown(change[field], field, row.currency)}"
        for field in fields
        if before.get(field) != change[field]
    ]
    return approval_request_create(
        kind=kind,
        target_type=f"ledger.{model._meta.model_name}",
        target_id=target,
        change=change,
        summary=f"{'new' if target == 'new' else 'change'} {model._meta.verbose_name} {label}: " + "; ".join(moves),
        requested_by=requested_by,
        reason=reason,
        request=request,
    )


# --- review approvals above an amount --------------------------------------------------------


def review_approval_request(*, case: ReviewCase, officer: User, reason: str, request=None) -> ApprovalRequest:
    return approval_request_create(
        kind=REVIEW_APPROVAL,
        target_type="ledger.review_case",
        target_id=str(case.public_id),
        change={"decision": "approve", "amount_minor": case.amount_minor, "currency": case.currency},
        summary=f"approve review case {case.public_id} ({format_amount(case.amount_minor, case.currency)}"
        f" {case.currency})",
        requested_by=officer,
        reason=reason,
        request=request,
    )


def _case_state(public_id: str) -> dict[str, Any]:
    return ReviewCase.objects.filter(public_id=public_id).values("status", "amount_minor", "currency").first() or {}


def _review_apply(approval: ApprovalRequest, approver: User) -> dict[str, Any]:
    case = review_case_decide(
        case_public_id=approval.target_id,
        approve=True,
        reason=f"four eyes: {approval.request_reason}",
        officer=approver,
        second_officer_of=approval.requested_by,
    )
    return {"case_status": case.status, "transfer": str(case.transfer.public_id) if case.transfer_id else None}


def _limit_state(target_id: str) -> dict[str, Any]:
    return _row_state(TransferLimit, LIMIT_FIELDS, target_id)


def _limit_apply(approval: ApprovalRequest, approver: User) -> dict[str, Any]:
    return _row_apply(TransferLimit, LIMIT_FIELDS, approval)


def _rule_state(target_id: str) -> dict[str, Any]:
    return _row_state(TransferRule, RULE_FIELDS, target_id)


def _rule_apply(approval: ApprovalRequest, approver: User) -> dict[str, Any]:
    return _row_apply(TransferRule, RULE_FIELDS, approval)


def register() -> None:
    money = "accounts.approve_money_change"
    for kind in (
        ChangeKind(DEPOSIT, money, "accounts.deposit_from_funding", _account_state, _deposit_apply,
                   "Deposit from platform funding"),
        ChangeKind(LIMIT, money, "ledger.change_transferlimit", _limit_state, _limit_apply, "Transfer limit"),
        ChangeKind(RULE, money, "ledger.change_transferrule", _rule_state, _rule_apply, "Transfer rule"),
        ChangeKind(REVIEW_APPROVAL, "ledger.decide_reviewcase", "ledger.decide_reviewcase", _case_state,
                   _review_apply, "Review case approval above the four-eyes amount"),
    ):  # fmt: skip
        change_kind_register(kind)
