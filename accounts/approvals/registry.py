"""The kinds of change that need a second person, registered by the app that owns each effect.

Accounts sits below the ledger, so the ledger registers its kinds (deposits,
limits, rules, review approvals) from its AppConfig.ready(), the way it
registers alert channels. A kind says who may approve it, what its target
looks like now (hashed into the request, so a changed target voids it) and
how to apply it, inside the approval's transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from accounts.approvals.exceptions import ApprovalKindUnknown

if TYPE_CHECKING:
    from accounts.approvals.models import ApprovalRequest
    from accounts.models import User


@dataclass(frozen=True, slots=True)
class ChangeKind:
    name: str
    permission: str  # what the approver must hold, e.g. "accounts.approve_access_change"
    request_permission: str  # what the requester must hold, e.g. "accounts.change_user"
    # The target's current state, JSON-serialisable, read under the caller's lock; {} if it does not exist.
    target_state: Callable[[str], dict[str, Any]]
    # Apply the change (the request is already marked applied); returns a result to keep, no PII.
    apply: Callable[[ApprovalRequest, User], dict[str, Any]]
    label: str = ""


_kinds: dict[str, ChangeKind] = {}


def change_kind_register(kind: ChangeKind) -> None:
    """Register a kind (from an AppConfig.ready); the same definition twice is a no-op."""
    existing = _kinds.get(kind.name)
    if existing is not None and existing != kind:
        raise RuntimeError(f"change kind {kind.name!r} registered twice with different definitions")
    _kinds[kind.name] = kind


def change_kind_get(name: str) -> ChangeKind:
    try:
        return _kinds[name]
    except KeyError:
        raise ApprovalKindUnknown(f"unknown kind of change: {name}") from None


def change_kinds() -> dict[str, ChangeKind]:
    return dict(_kinds)
