"""Admin pages whose Save asks for a change instead of making it (four eyes, ADR 0015).

A ModelAdmin using `FourEyesChangeAdmin` validates the form as usual, then
hands the unsaved object to `four_eyes_request`, which records a request; the
row changes only when a second person approves. Nothing else is written: no
save, no admin log entry for a change that has not happened. The response
leads to the request. Rows are never deleted from these pages.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from accounts.approvals.models import ApprovalRequest
from fintech.free_text import validate_free_text
from fintech.problems import DomainError


class FourEyesReasonForm(forms.ModelForm):
    """Every change says why: the reason goes with the request to the approver and into the sealed trail."""

    four_eyes_reason = forms.CharField(
        label="Why (for the approver)",
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=500,
        validators=[validate_free_text],
        help_text="Saving does not change anything yet: it asks a second person to approve exactly this change.",
    )


class FourEyesChangeAdmin(admin.ModelAdmin):
    def four_eyes_request(self, request: HttpRequest, obj, reason: str) -> ApprovalRequest | None:
        """Record the request for `obj` as edited; None when the change needs no second person (already saved)."""
        raise NotImplementedError

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj, form, change) -> None:
        request.four_eyes_saved = False
        try:
            request.four_eyes_request = self.four_eyes_request(request, obj, form.cleaned_data["four_eyes_reason"])
        except DomainError as refused:
            request.four_eyes_request = None
            messages.error(request, f"{refused.code}: {refused.detail}")
        else:
            request.four_eyes_saved = request.four_eyes_request is None

    def save_related(self, request: HttpRequest, form, formsets, change) -> None:
        if getattr(request, "four_eyes_saved", False):
            super().save_related(request, form, formsets, change)

    def log_addition(self, request, obj, message):
        return super().log_addition(request, obj, message) if getattr(request, "four_eyes_saved", False) else None

    def log_change(self, request, obj, message):
        return super().log_change(request, obj, message) if getattr(request, "four_eyes_saved", False) else None

    def _to_request(self, request: HttpRequest, default):
        approval = getattr(request, "four_eyes_request", None)
        if getattr(request, "four_eyes_saved", False):
            return default()
        if approval is None:
            return HttpResponseRedirect(request.path)
        messages.success(
            request, f"Request {approval.public_id} recorded: it takes effect when a second person approves it."
        )
        return HttpResponseRedirect(reverse("admin:accounts_approvalrequest_change", args=[approval.pk]))

    def response_add(self, request, obj, post_url_continue=None):
        return self._to_request(request, lambda: super(FourEyesChangeAdmin, self).response_add(request, obj))

    def response_change(self, request, obj):
        return self._to_request(request, lambda: super(FourEyesChangeAdmin, self).response_change(request, obj))
