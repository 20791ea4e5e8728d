"""Customer profiles in the admin: status and tier under four eyes, identity shown only "on file" or revealed.

Blocking or closing is protective and immediate (one person, with a reason on
record); unblocking and tier changes are requests a compliance officer
approves (ADR 0015). Identity is revealed only through the audited reveal
page (`pii.read`, with purpose and reason).
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse

from accounts.approvals.change_admin import FourEyesChangeAdmin, FourEyesReasonForm
from accounts.approvals.kinds_customers import customer_profile_change_request, customer_status_restrict
from accounts.forms import REVEALABLE_FIELDS, RevealIdentityForm
from accounts.models import CustomerProfile
from accounts.selectors import customer_pii_read
from audit.admin import UNMASK_PERMISSION
from audit.services.events import Actor
from tokenvault.exceptions import CiphertextTampered


class CustomerProfileForm(FourEyesReasonForm):
    class Meta:
        model = CustomerProfile
        fields = ("tier", "status")


PII_ON_FILE = "•••• on file (encrypted)"
PII_ABSENT = "—"


@admin.register(CustomerProfile)
class CustomerProfileAdmin(FourEyesChangeAdmin):
    """Tier and status are staff's to change; identity is only ever shown as "on file".

    Showing even a masked fragment would mean decrypting, i.e. a `pii.read`
    with a purpose for every page view; officers who need a value in clear go
    through `accounts.selectors.customer_pii_read`, which asks for a purpose
    and records it. The national ID's vault token is not shown either: it is
    the handle a detokenize call would need.

    Holders of `audit.unmask_pii` get a "Reveal identity" page (`reveal_view`)
    for a KYC review and the like: that is the admin's door to those values.
    """

    change_form_template = "admin/accounts/customerprofile/change_form.html"
    form = CustomerProfileForm

    list_display = ("user", "tier", "status", "identity_captured_at", "created_at")
    list_filter = ("tier", "status", ("identity_captured_at", admin.EmptyFieldListFilter))
    raw_id_fields = ("user",)
    fields = (
        "user",
        "tier",
        "status",
        "identity_captured_at",
        "full_name_masked",
        "date_of_birth_masked",
        "phone_masked",
        "postal_address_masked",
        "credit_score_masked",
        "national_id_masked",
        "created_at",
        "updated_at",
        "four_eyes_reason",  # a form field: Save blocks at once or asks for approval, always with a reason
    )
    readonly_fields = (
        "identity_captured_at",
        "full_name_masked",
        "date_of_birth_masked",
        "phone_masked",
        "postal_address_masked",
        "credit_score_masked",
        "national_id_masked",
        "created_at",
        "updated_at",
    )

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        # The owner of an existing profile is never editable: re-pointing it would hand another user
        # this customer's national ID token, phone index and captured identity (ADR 0013: tampering).
        return ("user", *self.readonly_fields) if obj is not None else self.readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # customers sign up through the API, with their login (accounts.services.customer_create)

    def four_eyes_request(self, request: HttpRequest, obj: CustomerProfile, reason: str):
        """Blocking or closing now (returns None); anything else becomes a request for a compliance officer."""
        if customer_status_restrict(profile=obj, staff=request.user, reason=reason, request=request):
            return None
        return customer_profile_change_request(profile=obj, requested_by=request.user, reason=reason, request=request)

    @staticmethod
    def _on_file(value) -> str:
        return PII_ABSENT if value is None else PII_ON_FILE

    @admin.display(description="full name")
    def full_name_masked(self, profile: CustomerProfile) -> str:
        return self._on_file(profile.full_name)

    @admin.display(description="date of birth")
    def date_of_birth_masked(self, profile: CustomerProfile) -> str:
        return self._on_file(profile.date_of_birth)

    @admin.display(description="phone")
    def phone_masked(self, profile: CustomerProfile) -> str:
        return self._on_file(profile.phone)

    @admin.display(description="postal address")
    def postal_address_masked(self, profile: CustomerProfile) -> str:
        return self._on_file(profile.postal_address)

    @admin.display(description="credit score")
    def credit_score_masked(self, profile: CustomerProfile) -> str:
        return self._on_file(profile.credit_score)

    @admin.display(description="national ID")
    def national_id_masked(self, profile: CustomerProfile) -> str:
        return "•••• in the token vault" if profile.national_id_token else PII_ABSENT

    # --- Reveal identity: the audited unmask, as for an audit event's actor (audit/admin.py) -------------

    def get_urls(self):
        opts = self.opts
        custom = [
            path(
                "<path:object_id>/reveal/",
                self.admin_site.admin_view(self.reveal_view),  # admin_view adds never_cache (no-store)
                name=f"{opts.app_label}_{opts.model_name}_reveal",
            ),
        ]
        return custom + super().get_urls()  # first: "<path:object_id>/" would swallow ".../reveal"

    def _may_reveal(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request) and request.user.has_perm(UNMASK_PERMISSION)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_reveal": self._may_reveal(request),
            "reveal_url": reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_reveal",
                args=[quote(object_id)],
                current_app=self.admin_site.name,
            ),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def reveal_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET shows the form; a valid POST shows the chosen values in clear, in this response only.

        `customer_pii_read` records the `pii.read` (fields, purpose, reason,
        who) before anything is shown; a refusal (no permission, no purpose or
        reason, a card number in the reason) records nothing. The values never
        go into a URL, a message (stored in the session) or a log line.
        """
        if not self._may_reveal(request):
            raise PermissionDenied
        profile = self.get_object(request, unquote(object_id))
        if profile is None:
            raise Http404("No such customer profile.")
        form = RevealIdentityForm(
            request.POST if request.method == "POST" else None,
            identity_captured=profile.identity_captured_at is not None,
        )
        context = {
            **self.admin_site.each_context(request),
            "title": "Reveal identity",
            "opts": self.opts,
            "original": profile,
            "form": form,
            "reveal_url": request.path,
            "change_url": reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
                args=[quote(profile.pk)],
                current_app=self.admin_site.name,
            ),
        }
        if request.method == "POST" and form.is_valid():
            try:
                values = customer_pii_read(
                    profile=profile,
                    fields=form.cleaned_data["reveal"],
                    purpose=form.cleaned_data["purpose"],
                    reason=form.cleaned_data["reason"],
                    actor=Actor(staff=str(request.user.public_id)),
                    request=request,
                )
            except CiphertextTampered:
                context["tampered"] = True  # recorded as pii.integrity_failure by the selector
            else:
                context["revealed"] = [
                    (label, _value_shown(values[name])) for name, label in REVEALABLE_FIELDS if name in values
                ]
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/accounts/customerprofile/reveal.html", context)


ADDRESS_ORDER = ("line1", "line2", "city", "region", "postal_code", "country")


def _value_shown(value) -> str:
    """One line per value: an address in postal order, a date as ISO 8601."""
    if isinstance(value, dict):
        keys = [key for key in ADDRESS_ORDER if key in value] + sorted(set(value) - set(ADDRESS_ORDER))
        return ", ".join(str(value[key]) for key in keys if value[key])
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
