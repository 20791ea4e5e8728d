"""The four-eyes queue in the admin: pending requests, a decision page, and the access-change request form.

Deciding needs a second factor at most 5 minutes old: the decision form asks
for a current code unless this session proved one that recently. Requests are
never edited here; their rows change only through the services.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.approvals.change_admin import FourEyesChangeAdmin, FourEyesReasonForm
from accounts.approvals.kinds_access import FLAGS, access_state, staff_access_change_request
from accounts.approvals.kinds_clients import client_policy_change_request
from accounts.approvals.kinds_customers import customer_second_factor_reset_request
from accounts.approvals.kinds_staff import staff_invite_request, staff_mfa_reset_request
from accounts.approvals.models import ApprovalRequest
from accounts.approvals.registry import change_kind_get
from accounts.approvals.services import approval_request_approve, approval_request_reject
from accounts.mfa.services import second_factor_verify
from accounts.mfa.session import mark_session_mfa_verified, session_mfa_verified_at
from accounts.models import OAuthClientPolicy, User
from accounts.roles import ROLE_PERMISSIONS
from audit.masking import email_masked
from fintech.admin import ReadOnlyModelAdmin
from fintech.free_text import CARD_NUMBER_IN_FREE_TEXT, validate_free_text
from fintech.problems import DomainError

REASON_HELP = "Why (required, recorded in the sealed trail; never a card number or a customer's personal data)."


def person_shown(user: User) -> str:
    """Masked email and public id: enough for a colleague to recognise who asked, never the address."""
    return f"{email_masked(user.email)} ({user.public_id})"


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[("approve", "Approve and apply"), ("reject", "Reject")], widget=forms.RadioSelect
    )
    change_hash = forms.CharField(widget=forms.HiddenInput, max_length=64)
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=500, required=False, validators=[validate_free_text]
    )
    code = forms.CharField(
        label="Authenticator code",
        required=False,
        max_length=12,
        help_text="Needed when this session last proved your second factor more than 5 minutes ago.",
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("decision") == "reject" and not (cleaned.get("reason") or "").strip():
            self.add_error("reason", "A rejection says why.")
        return cleaned


class AccessChangeForm(forms.Form):
    roles = forms.MultipleChoiceField(
        choices=[(role, role) for role in sorted(ROLE_PERMISSIONS)], widget=forms.CheckboxSelectMultiple, required=False
    )
    permissions = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="Single permissions beyond the roles, one app_label.codename per line (rarely needed).",
    )
    is_active = forms.BooleanField(required=False)
    is_staff = forms.BooleanField(required=False)
    is_superuser = forms.BooleanField(required=False)
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=500, help_text=REASON_HELP, validators=[validate_free_text]
    )

    def clean_permissions(self) -> list[str]:
        return sorted({line.strip() for line in self.cleaned_data["permissions"].splitlines() if line.strip()})


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=500, help_text=REASON_HELP, validators=[validate_free_text]
    )


class InvitationForm(ReasonForm):
    email = forms.EmailField(max_length=254, help_text="Their work email: the single-use link (24 h) goes there.")
    roles = forms.MultipleChoiceField(
        choices=[(role, role) for role in sorted(ROLE_PERMISSIONS)], widget=forms.CheckboxSelectMultiple
    )
    field_order = ("email", "roles", "reason")


# The requests staff ask for with a reason and nothing else to fill in: (title, who may ask, description).
REASONED_REQUESTS = {
    "invite": (
        "Invite a new staff member",
        "accounts.change_user",
        "A second security admin approves; then the person receives a single-use link (24 h) to set their password"
        " and enrol an authenticator. Nobody else ever types their password.",
    ),
    "staff-second-factor": (
        "Reset a staff member's second factor",
        "accounts.change_user",
        "A second security admin approves; their authenticators, recovery codes, password and sessions are removed"
        " and a re-enrolment link (24 h) is emailed to them.",
    ),
    "customer-second-factor": (
        "Reset a customer's lost second factor",
        "accounts.change_customerprofile",
        "Only after checking the person's identity (say how in the reason). A compliance officer approves; the"
        " customer's authenticators and recovery codes are removed, they are signed out everywhere, and no money"
        " leaves them for 24 hours.",
    ),
}


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyModelAdmin):
    change_list_template = "admin/accounts/approvalrequest/change_list.html"
    list_display = ("public_id", "kind", "summary", "status", "requested_by_id_public", "requested_at", "expires_at")
    list_filter = ("status", "kind")
    search_fields = ("=public_id", "=target_id")
    ordering = ("-requested_at",)
    list_select_related = ("requested_by", "decided_by", "subject")
    fields = (
        "public_id", "kind", "summary", "status", "target_type", "target_id", "change_display", "change_hash",
        "subject_public_id", "requested_by_id_public", "request_reason", "requested_at", "expires_at",
        "decided_by_public_id", "decided_at", "decision_reason", "result",
    )  # fmt: skip
    readonly_fields = fields

    @admin.display(description="requested by")
    def requested_by_id_public(self, approval: ApprovalRequest) -> str:
        return person_shown(approval.requested_by)

    @admin.display(description="subject")
    def subject_public_id(self, approval: ApprovalRequest) -> str:
        return person_shown(approval.subject) if approval.subject_id else "-"

    @admin.display(description="decided by")
    def decided_by_public_id(self, approval: ApprovalRequest) -> str:
        return person_shown(approval.decided_by) if approval.decided_by_id else "-"

    @admin.display(description="change")
    def change_display(self, approval: ApprovalRequest) -> str:
        return format_html("<pre>{}</pre>", json.dumps(approval.change, indent=2, sort_keys=True))

    def _url(self, name: str, *args) -> str:
        return reverse(f"admin:accounts_approvalrequest_{name}", args=args, current_app=self.admin_site.name)

    def get_urls(self):
        custom = [
            path("<path:object_id>/decide/", self.admin_site.admin_view(self.decide_view),
                 name="accounts_approvalrequest_decide"),
            path("access/<uuid:user_public_id>/", self.admin_site.admin_view(self.access_request_view),
                 name="accounts_approvalrequest_access"),
            path("ask/invite/", self.admin_site.admin_view(self.reasoned_request_view),
                 {"what": "invite"}, name="accounts_approvalrequest_invite"),
            path("ask/<str:what>/<uuid:user_public_id>/", self.admin_site.admin_view(self.reasoned_request_view),
                 name="accounts_approvalrequest_ask"),
        ]  # fmt: skip
        return custom + super().get_urls()

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        extra_context = {**(extra_context or {}), "decide_url": self._url("decide", quote(object_id))}
        return super().change_view(request, object_id, form_url, extra_context)

    def _second_factor_fresh(self, request: HttpRequest, code: str):
        """When the approver last proved the second factor; a code typed now counts as now."""
        if code:
            verification = second_factor_verify(user=request.user, method="totp", code=code, request=request)
            if verification.verified:
                return mark_session_mfa_verified(request)
            return None
        return session_mfa_verified_at(request)

    def decide_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        approval = self.get_object(request, unquote(object_id))
        if approval is None or not self.has_view_permission(request, approval):
            raise Http404("No such approval request.")
        change_url = self._url("change", quote(approval.pk))
        form = DecisionForm(
            request.POST if request.method == "POST" else None, initial={"change_hash": approval.change_hash}
        )
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                if data["decision"] == "approve":
                    decided = approval_request_approve(
                        approval_id=approval.public_id,
                        approver=request.user,
                        change_hash=data["change_hash"],
                        mfa_verified_at=self._second_factor_fresh(request, data["code"].strip()),
                        reason=data["reason"],
                        request=request,
                    )
                else:
                    decided = approval_request_reject(
                        approval_id=approval.public_id, decider=request.user, reason=data["reason"], request=request
                    )
            except DomainError as refused:
                messages.error(request, f"{refused.detail} ({refused.code})")
                if refused.code == CARD_NUMBER_IN_FREE_TEXT:
                    form = DecisionForm(initial={"change_hash": approval.change_hash})
                approval.refresh_from_db()
            else:
                messages.success(request, f"Request {decided.public_id}: {decided.get_status_display().lower()}.")
                return HttpResponseRedirect(change_url)
        kind = change_kind_get(approval.kind)
        context = {
            **self.admin_site.each_context(request),
            "title": "Decide request",
            "opts": self.opts,
            "original": approval,
            "kind_label": kind.label or approval.kind,
            "requested_by": person_shown(approval.requested_by),
            "may_approve": request.user.has_perm(kind.permission)
            and request.user.pk not in (approval.requested_by_id, approval.subject_id),
            "change_json": json.dumps(approval.change, indent=2, sort_keys=True),
            "form": form,
            "decide_url": request.path,
            "change_url": change_url,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/accounts/approvalrequest/decide.html", context)

    def reasoned_request_view(self, request: HttpRequest, what: str, user_public_id=None) -> HttpResponse:
        """Ask for an invitation or a second-factor reset: a reason, then a second person approves."""
        if what not in REASONED_REQUESTS:
            raise Http404("No such request.")
        title, permission, description = REASONED_REQUESTS[what]
        if not request.user.has_perm(permission):
            raise PermissionDenied
        subject = None
        if user_public_id is not None:
            subject = User.objects.filter(public_id=user_public_id).first()
            if subject is None or (what == "customer-second-factor") == subject.is_staff:
                raise Http404("No such person.")
        form_class = InvitationForm if what == "invite" else ReasonForm
        form = form_class(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                approval = _reasoned_request(what, request, subject, form.cleaned_data)
            except DomainError as refused:
                messages.error(request, f"{refused.code}: {refused.detail}")
            else:
                messages.success(request, f"Request {approval.public_id} recorded; a second person approves it.")
                return HttpResponseRedirect(self._url("change", quote(approval.pk)))
        context = {
            **self.admin_site.each_context(request),
            "title": title + (f" (user {subject.public_id})" if subject else ""),
            "opts": self.opts,
            "description": description,
            "form": form,
            "action_url": request.path,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/accounts/approvalrequest/reasoned_request.html", context)

    def access_request_view(self, request: HttpRequest, user_public_id) -> HttpResponse:
        """Ask for a person's access to change; nothing changes until a second person approves."""
        if not request.user.has_perm("accounts.change_user"):
            raise PermissionDenied
        subject = User.objects.filter(public_id=user_public_id).first()
        if subject is None:
            raise Http404("No such user.")
        current = access_state(subject)
        initial = {
            "roles": current["roles"],
            "permissions": "\n".join(current["permissions"]),
            **{flag: current[flag] for flag in FLAGS},
        }
        form = AccessChangeForm(request.POST if request.method == "POST" else None, initial=initial)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                approval = staff_access_change_request(
                    user=subject,
                    roles=data["roles"],
                    permissions=data["permissions"],
                    is_active=data["is_active"],
                    is_staff=data["is_staff"],
                    is_superuser=data["is_superuser"],
                    requested_by=request.user,
                    reason=data["reason"],
                    request=request,
                )
            except DomainError as refused:
                messages.error(request, f"{refused.code}: {refused.detail}")
            else:
                messages.success(
                    request, f"Request {approval.public_id} recorded; it takes effect when a second person approves it."
                )
                return HttpResponseRedirect(self._url("change", quote(approval.pk)))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Request an access change for user {subject.public_id}",
            "opts": self.opts,
            "subject": subject,
            "current": current,
            "form": form,
            "action_url": request.path,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/accounts/approvalrequest/access_request.html", context)


class ClientPolicyForm(FourEyesReasonForm):
    webhook_url = forms.URLField(
        assume_scheme="https", required=False, max_length=500, help_text="https URL receiving signed transfer events"
    )

    class Meta:
        model = OAuthClientPolicy
        fields = ("can_introspect", "webhook_url", "detokenize_token_types")


@admin.register(OAuthClientPolicy)
class OAuthClientPolicyAdmin(FourEyesChangeAdmin):
    """Partner client policies: Save asks a second security admin to approve the exact policy (ADR 0015)."""

    form = ClientPolicyForm
    list_display = ("client_id", "client_name", "can_introspect", "webhook_url", "detokenize_token_types")
    search_fields = ("=application__client_id",)
    list_select_related = ("application",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created with the client (accounts.oauth.clients)

    @admin.display(description="client id")
    def client_id(self, policy: OAuthClientPolicy) -> str:
        return policy.application.client_id

    @admin.display(description="client")
    def client_name(self, policy: OAuthClientPolicy) -> str:
        return policy.application.name

    def four_eyes_request(self, request: HttpRequest, obj, reason: str):
        return client_policy_change_request(policy=obj, requested_by=request.user, reason=reason, request=request)


def _reasoned_request(what: str, request: HttpRequest, subject: User | None, data: dict) -> ApprovalRequest:
    common = {"requested_by": request.user, "reason": data["reason"], "request": request}
    if what == "invite":
        return staff_invite_request(email=data["email"], roles=data["roles"], **common)
    if what == "staff-second-factor":
        return staff_mfa_reset_request(user=subject, **common)
    return customer_second_factor_reset_request(customer=subject, **common)
