"""Four-eyes kind `oauth.client_policy`: what a partner client may do beyond its grant.

A client policy decides which vault token types a partner may turn back into
card numbers or national IDs, and where signed transfer events go: one
security admin alone must not be able to widen it.
"""

from __future__ import annotations

from typing import Any

from django.forms.models import model_to_dict
from django.http import HttpRequest

from accounts.approvals.exceptions import ApprovalNothingToChange
from accounts.approvals.models import ApprovalRequest
from accounts.approvals.registry import ChangeKind, change_kind_register
from accounts.approvals.services import approval_request_create
from accounts.models import OAuthClientPolicy, User

KIND = "oauth.client_policy"
POLICY_FIELDS = ("can_introspect", "webhook_url", "detokenize_token_types")


def _policy_locked(client_id: str) -> OAuthClientPolicy | None:
    return (
        OAuthClientPolicy.objects.select_for_update(of=("self",))
        .select_related("application")
        .filter(application__client_id=client_id)
        .first()
    )


def _target_state(client_id: str) -> dict[str, Any]:
    policy = _policy_locked(client_id)
    return {} if policy is None else model_to_dict(policy, fields=POLICY_FIELDS)


def _apply(approval: ApprovalRequest, approver: User) -> dict[str, Any]:
    policy = _policy_locked(approval.target_id)
    for field in POLICY_FIELDS:
        setattr(policy, field, approval.change[field])
    policy.full_clean()
    policy.save(update_fields=list(POLICY_FIELDS))
    return {"client_id": approval.target_id}


def client_policy_change_request(
    *, policy: OAuthClientPolicy, requested_by: User, reason: str, request: HttpRequest | None = None
) -> ApprovalRequest:
    """`policy` as staff edited it (unsaved); a second security admin applies it."""
    client_id = policy.application.client_id
    if _target_state(client_id) == model_to_dict(policy, fields=POLICY_FIELDS):
        raise ApprovalNothingToChange()
    return approval_request_create(
        kind=KIND,
        target_type="oauth2_provider.application",
        target_id=client_id,
        change=model_to_dict(policy, fields=POLICY_FIELDS),
        summary=f"policy of OAuth client {client_id}",
        requested_by=requested_by,
        reason=reason,
        request=request,
    )


def register() -> None:
    change_kind_register(
        ChangeKind(
            KIND,
            "accounts.approve_client_change",
            "accounts.change_oauthclientpolicy",
            _target_state,
            _apply,
            "Partner client policy",
        )
    )
