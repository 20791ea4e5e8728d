"""Staff views of the ledger: money rows are read-only; limits and rules are data staff maintain.

Balances, transfers, postings and holds change only through `ledger.services`
(locks, invariants, audit): the admin shows them and never edits or deletes
them, superusers included. Limits and rules are edited here; django-auditlog
records every change (ledger/apps.py) into the sealed trail.
"""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from fintech.admin import ReadOnlyModelAdmin
from fintech.problems import DomainError
from ledger.currencies import format_amount
from ledger.models import Hold, LedgerAccount, Posting, ReviewCase, Transfer, TransferLimit, TransferRule
from ledger.models.reviews import DECISION_REASON_MAX_LENGTH
from ledger.services.reviews import DECIDE_PERMISSION, review_case_decide


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyModelAdmin):
    list_display = (
        "public_id",
        "kind",
        "purpose",
        "currency",
        "status",
        "posted_minor",
        "held_minor",
        "credit_limit_minor",
        "version",
    )
    list_filter = ("kind", "status", "currency")
    search_fields = ("=public_id",)
    raw_id_fields = ("owner",)


class PostingInline(admin.TabularInline):
    model = Posting
    fields = ("account", "amount_minor", "currency", "balance_after_minor", "account_version", "created_at")
    readonly_fields = fields
    can_delete = False
    extra = 0

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Transfer)
class TransferAdmin(ReadOnlyModelAdmin):
    list_display = ("public_id", "kind", "amount_minor", "currency", "flagged_for_review", "created_at")
    list_filter = ("kind", "currency", "flagged_for_review")
    search_fields = ("=public_id", "=client_id")
    date_hierarchy = "created_at"
    inlines = [PostingInline]
    raw_id_fields = ("initiated_by", "reverses", "hold")


@admin.register(Hold)
class HoldAdmin(ReadOnlyModelAdmin):
    list_display = ("public_id", "status", "amount_minor", "captured_minor", "expires_at")
    list_filter = ("status",)
    search_fields = ("=public_id",)
    raw_id_fields = ("account", "destination", "created_by")


@admin.register(TransferLimit)
class TransferLimitAdmin(admin.ModelAdmin):
    list_display = ("tier", "currency", "per_transfer_max_minor", "daily_outgoing_max_minor")
    list_filter = ("tier", "currency")


@admin.register(TransferRule)
class TransferRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "currency", "threshold_minor", "max_count", "window_minutes", "action", "active")
    list_filter = ("kind", "action", "active")


# --- Review cases: the compliance officers' queue -------------------------------------



class ReviewCaseAgeFilter(admin.SimpleListFilter):
    title = "age"
    parameter_name = "age"
    AGES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}

    def lookups(self, request, model_admin):
        return [("1h", "Older than 1 hour"), ("24h", "Older than 24 hours"), ("7d", "Older than 7 days")]

    def queryset(self, request, queryset):
        age = self.AGES.get(self.value())
        if age is None:
            return queryset
        return queryset.filter(opened_at__lte=timezone.now() - age)


class ReviewCaseRuleFilter(admin.SimpleListFilter):
    title = "rule"
    parameter_name = "rule"

    def lookups(self, request, model_admin):
        return [(name, name) for name in TransferRule.objects.order_by("name").values_list("name", flat=True)]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(reasons__contains=[self.value()])


class ReviewCaseDecisionForm(forms.Form):
    """What the officer decides and why; the reason is kept in the case and the audit trail."""

    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")], widget=forms.RadioSelect)
    reason = forms.CharField(
        max_length=DECISION_REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Recorded in the case and the audit trail; do not paste PII or card numbers here.",
    )


def _public_id(user) -> str | None:
    return str(user.public_id) if user is not None else None


@admin.register(ReviewCase)
class ReviewCaseAdmin(ReadOnlyModelAdmin):
    """Open and decided cases, oldest first; people appear only by public id. Decisions go through the service."""

    list_display = (
        "public_id",
        "kind",
        "status",
        "reasons_display",
        "amount",
        "opened_at",
        "escalated_at",
        "assignee_public_id",
        "decided_by_public_id",
    )
    list_filter = ("status", "kind", "currency", ReviewCaseAgeFilter, ReviewCaseRuleFilter)
    list_select_related = ("assignee", "decided_by")
    ordering = ("opened_at", "id")
    search_fields = ("=public_id",)
    show_facets = admin.ShowFacets.NEVER
    actions = None
    fields = (
        "public_id",
        "kind",
        "status",
        "reasons_display",
        "amount",
        "subject_public_id",
        "transfer_public_id",
        "hold_public_id",
        "opened_at",
        "escalated_at",
        "assignee_public_id",
        "decided_by_public_id",
        "decided_at",
        "decision_reason",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("subject", "assignee", "decided_by", "transfer", "hold")

    @admin.display(description="reasons")
    def reasons_display(self, case: ReviewCase) -> str:
        return ", ".join(str(reason) for reason in case.reasons or []) or self.get_empty_value_display()

    @admin.display(description="amount", ordering="amount_minor")
    def amount(self, case: ReviewCase) -> str:
        return f"{format_amount(case.amount_minor, case.currency)} {case.currency}"

    @admin.display(description="subject (public id)")
    def subject_public_id(self, case: ReviewCase) -> str | None:
        return _public_id(case.subject)

    @admin.display(description="assignee")
    def assignee_public_id(self, case: ReviewCase) -> str | None:
        return _public_id(case.assignee)

    @admin.display(description="decided by")
    def decided_by_public_id(self, case: ReviewCase) -> str | None:
        return _public_id(case.decided_by)

    @admin.display(description="transfer")
    def transfer_public_id(self, case: ReviewCase) -> str | None:
        return str(case.transfer.public_id) if case.transfer_id else None

    @admin.display(description="hold")
    def hold_public_id(self, case: ReviewCase) -> str | None:
        return str(case.hold.public_id) if case.hold_id else None

    def _url(self, name: str, *args) -> str:
        return reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_{name}", args=args, current_app=self.admin_site.name
        )

    def get_urls(self):
        custom = [
            path(
                "<path:object_id>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name=f"{self.opts.app_label}_{self.opts.model_name}_decide",
            ),
        ]
        return custom + super().get_urls()  # first: "<path:object_id>/" would swallow ".../decide"

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_decide": request.user.has_perm(DECIDE_PERMISSION),
            "decide_form": ReviewCaseDecisionForm(),
            "decide_url": self._url("decide", quote(object_id)),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def decide_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET shows the form; only a valid POST decides, through `review_case_decide`."""
        if not (self.has_view_permission(request) and request.user.has_perm(DECIDE_PERMISSION)):
            raise PermissionDenied
        case = self.get_object(request, unquote(object_id))
        if case is None:
            raise Http404("No such review case.")
        change_url = self._url("change", quote(case.pk))
        form = ReviewCaseDecisionForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                decided = review_case_decide(
                    case_public_id=case.public_id,
                    approve=form.cleaned_data["decision"] == "approve",
                    reason=form.cleaned_data["reason"],
                    officer=request.user,
                )
            except DomainError as refused:
                messages.error(request, refused.detail)
            else:
                messages.success(request, f"Review case {decided.public_id} {decided.get_status_display().lower()}.")
            return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "title": "Decide review case",
            "opts": self.opts,
            "original": case,
            "amount": self.amount(case),
            "form": form,
            "decide_url": request.path,
            "change_url": change_url,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/ledger/reviewcase/decide.html", context)
