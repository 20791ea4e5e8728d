"""Four-eyes kind `fields.key_retire`: destroying a field-encryption key version takes two people.

Retiring a KEK version is irreversible: anything still sealed under it is lost
for good. The checks run when it is asked for (so nobody approves a request
that cannot work) and again when it is applied, against the key ring as it is
then (its versions are the target's state, so a rotation in between voids it).

The vault role's own keys (`vault_retire_key`) are not covered: that role
cannot read this database's staff or approvals (ADR 0015).
"""

from __future__ import annotations

from typing import Any

from accounts.approvals.models import ApprovalRequest
from accounts.approvals.registry import ChangeKind, change_kind_register
from accounts.approvals.services import approval_request_create
from accounts.models import User
from audit.services.events import Actor
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


def register() -> None:
    change_kind_register(
        ChangeKind(KIND, PERMISSION, PERMISSION, _key_ring_state, _apply, "Retire a field-encryption key version")
    )
