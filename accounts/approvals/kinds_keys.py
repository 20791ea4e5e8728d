"""Four-eyes kind `fields.key_retire`: destroying a field-encryption key version takes two people.

Retiring a KEK version is irreversible: anything still sealed under it is lost
for good. The checks run when it is asked for (so nobody approves a request
that cannot work) and again when it is applied, against the key ring as it is
then (its versions are the target's state, so a rotation in between voids it).

The vault role's own keys cannot be reached from here, and that role cannot
read this database's staff or approvals: its commands take a signed staff
grant instead (`vault.key_retire` approvals issue one; fintech/staff_grants.py).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.approvals.exceptions import ApprovalNotFound, ApprovalNotPending, ApprovalNotPermitted
from accounts.approvals.models import ApprovalRequest
from accounts.approvals.registry import ChangeKind, change_kind_register
from accounts.approvals.services import approval_request_create
from accounts.models import User
from audit.models import AuditEvent
from audit.services.events import Actor, audit_event_record
from fintech.staff_grants import staff_grant_sign
from tokenvault.field_keys import field_kek_retire, field_kek_retire_check
from tokenvault.fields import field_key_provider

KIND = "fields.key_retire"
PERMISSION = "accounts.manage_encryption_keys"


def _key_ring_state(target_id: str) -> dict[str, Any]:
    provider = field_key_provider()
    _, current = provider.current_kek()
    return {"versions": provider.versions(), "current": current}


def _apply(approval: ApprovalRequest, approver: User) -> dict[str, Any]:
    version = int(approval.target_id)
    field_kek_retire(version=version, actor=Actor(staff=str(approver.public_id)))
    return {"retired_version": version}


def field_key_retire_request(*, version: int, requested_by: User, reason: str) -> ApprovalRequest:
    """Check the version could be retired now, then ask a second key manager to approve it."""
    field_kek_retire_check(version=version)
    return approval_request_create(
        kind=KIND,
        target_type="field_kek",
        target_id=str(version),
        change={"retire_version": version},
        summary=f"retire field-encryption key version {version} (irreversible)",
        requested_by=requested_by,
        reason=reason,
    )


# --- the vault role's keys: signed staff grants (fintech/staff_grants.py) ---------------------------

VAULT_RETIRE_KIND = "vault.key_retire"
VAULT_GRANT_COMMANDS = ("vault_rotate_key", "vault_rewrap", "vault_retire_key")
GRANT_LIFETIME = timedelta(minutes=10)
APPROVED_GRANT_LIFETIME = timedelta(hours=1)


def vault_grant_issue(
    *, command: str, args: dict[str, Any], operator: User, approval: ApprovalRequest | None = None
) -> tuple[str, datetime]:
    """Sign a single-use grant for one vault-role command run; the vault checks it with the public key alone."""
    if command not in VAULT_GRANT_COMMANDS:
        raise ValueError(f"no staff grant for {command}")
    approved_by = str(approval.decided_by.public_id) if approval is not None else ""
    expires_at = timezone.now() + (APPROVED_GRANT_LIFETIME if approval is not None else GRANT_LIFETIME)
    grant_id = str(uuid.uuid4())
    token = staff_grant_sign({
        "command": command,
        "args": args,
        "operator": str(operator.public_id),
        "approved_by": approved_by,
        "approval": str(approval.public_id) if approval is not None else "",
        "grant_id": grant_id,
        "expires_at": expires_at.astimezone(UTC).isoformat(),
    })  # fmt: skip
    audit_event_record(
        event_type="staff.grant_issued",
        outcome=AuditEvent.Outcome.SUCCESS,
        actor=Actor(staff=approved_by or str(operator.public_id)),
        object_type="staff_grant",
        object_id=grant_id,
        payload={"command": command, "args": args, "operator": str(operator.public_id), "approved_by": approved_by},
    )
    return token, expires_at


def _vault_retire_state(target_id: str) -> dict[str, Any]:
    return {"version": int(target_id)}  # the vault's key ring is out of this role's sight; the vault re-checks


def _vault_retire_apply(approval: ApprovalRequest, approver: User) -> dict[str, Any]:
    """Nothing to change here: the requester now fetches the signed grant (`vault_grant ... --approval ID`)."""
    return {"version": int(approval.target_id), "grant": "not fetched yet"}


def vault_retire_grant_fetch(*, approval_id, version: int, operator: User) -> tuple[str, datetime]:
    """The requester's one grant for an approved retirement; never stored, so fetched once (under the row lock)."""
    with transaction.atomic():
        approval = (
            ApprovalRequest.objects.select_for_update(of=("self",))
            .select_related("decided_by", "requested_by")
            .filter(public_id=approval_id, kind=VAULT_RETIRE_KIND)
            .first()
        )
        if approval is None or approval.target_id != str(version):
            raise ApprovalNotFound()
        if approval.status != ApprovalRequest.Status.APPLIED:
            raise ApprovalNotPending("This retirement has not been approved (or was refused).")
        if approval.requested_by_id != operator.pk:
            raise ApprovalNotPermitted("Only the person who asked fetches the grant.")
        if approval.result.get("grant") != "not fetched yet":
            raise ApprovalNotPending("The grant for this approval was fetched already; ask again.")
        token, expires_at = vault_grant_issue(
            command="vault_retire_key", args={"version": version}, operator=operator, approval=approval
        )
        approval.result = {**approval.result, "grant": f"fetched, expires {expires_at.isoformat()}"}
        approval.save(update_fields=["result"])
    return token, expires_at


def vault_key_retire_request(*, version: int, requested_by: User, reason: str) -> ApprovalRequest:
    return approval_request_create(
        kind=VAULT_RETIRE_KIND,
        target_type="vault_kek",
        target_id=str(version),
        change={"retire_version": version},
        summary=f"retire token vault key version {version} (irreversible): a signed grant for vault_retire_key",
        requested_by=requested_by,
        reason=reason,
    )


def register() -> None:
    change_kind_register(
        ChangeKind(KIND, PERMISSION, PERMISSION, _key_ring_state, _apply, "Retire a field-encryption key version")
    )
    change_kind_register(
        ChangeKind(
            VAULT_RETIRE_KIND,
            PERMISSION,
            PERMISSION,
            _vault_retire_state,
            _vault_retire_apply,
            "Retire a token vault key version",
        )
    )
