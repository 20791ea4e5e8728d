"""Staff detokenization in the Django admin, one permission per token type (ADR 0012).

Vault records are not browsable: in production the API role, which serves the
admin, does not even hold the vault database. The only page is a form where a
staff member with `tokenvault.detokenize_card` and/or
`tokenvault.detokenize_national_id` enters tokens, a purpose and a reason;
the values are read through the vault role like any other caller's, so the
vault enforces the types the staff member holds and records a `pii.read` row
per value (or a denial) with the purpose. Staff reads count against a
sliding window of their own, like a partner's.

The values appear in that one response only: never in a URL, a message
(stored in the session) or a log line, and the page is not cached
(`admin_view` adds never_cache).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from audit.forms import REASON_MAX_LENGTH, REASON_MIN_LENGTH, purpose_choices
from audit.services.events import Actor
from fintech.admin import ReadOnlyModelAdmin
from fintech.free_text import validate_free_text
from fintech.problems import DomainError
from tokenvault.client import vault_client
from tokenvault.models import VaultRecord
from tokenvault.quota import detokenize_quota_take
from tokenvault.services.records import MAX_TOKEN_LENGTH

MAX_ADMIN_TOKENS = 20


def permitted_token_types(user) -> frozenset[str]:
    """The token types a staff member may read in clear: one Django permission per type."""
    return frozenset(t for t in VaultRecord.TokenType.values if user.has_perm(f"tokenvault.detokenize_{t}"))


class DetokenizeForm(forms.Form):
    tokens = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text=f"One token per line, at most {MAX_ADMIN_TOKENS}.",
    )
    purpose = forms.ChoiceField(choices=purpose_choices, help_text="The legal ground for seeing these values.")
    reason = forms.CharField(
        min_length=REASON_MIN_LENGTH,
        max_length=REASON_MAX_LENGTH,
        validators=[validate_free_text],
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="For example the case or ticket number. Recorded in the audit trail; do not paste PII here.",
    )

    def clean_tokens(self) -> list[str]:
        tokens = list(dict.fromkeys(line.strip() for line in self.cleaned_data["tokens"].splitlines() if line.strip()))
        if not tokens or len(tokens) > MAX_ADMIN_TOKENS:
            raise forms.ValidationError(f"Enter between 1 and {MAX_ADMIN_TOKENS} tokens.")
        if any(len(token) > MAX_TOKEN_LENGTH for token in tokens):
            raise forms.ValidationError("That is not a token.")
        return tokens


@admin.register(VaultRecord)
class VaultDetokenizeAdmin(ReadOnlyModelAdmin):
    """The detokenize form in place of a change list; no record is ever listed, added, changed or deleted."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(permitted_token_types(request.user))

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return obj is None and bool(permitted_token_types(request.user))

    def get_urls(self):
        opts = self.opts
        return [
            path(
                "",
                self.admin_site.admin_view(self.detokenize_view),
                name=f"{opts.app_label}_{opts.model_name}_changelist",
            ),
        ]

    def detokenize_view(self, request: HttpRequest) -> HttpResponse:
        permitted = permitted_token_types(request.user)
        if not permitted:
            raise PermissionDenied
        form = DetokenizeForm(request.POST if request.method == "POST" else None)
        context = {
            **self.admin_site.each_context(request),
            "title": "Read vaulted values in clear",
            "opts": self.opts,
            "form": form,
            "permitted": sorted(permitted),
        }
        if request.method == "POST" and form.is_valid():
            tokens = form.cleaned_data["tokens"]
            try:
                detokenize_quota_take(client_id=f"staff:{request.user.public_id}", values=len(tokens))
                values = vault_client().detokenize(
                    tokens=tokens,
                    actor=Actor(staff=str(request.user.public_id)),
                    purpose=form.cleaned_data["purpose"],
                    permitted_token_types=permitted,
                    reason=form.cleaned_data["reason"],
                )
            except DomainError as refusal:
                context["refusal"] = refusal
            else:
                context["values"] = [(token, values[token]) for token in tokens]
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/tokenvault/detokenize.html", context)
