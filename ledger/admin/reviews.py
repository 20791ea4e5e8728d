"""The compliance officers' review queue: read-only cases, decisions only through the service, on POST."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from fintech.admin import ReadOnlyModelAdmin
from fintech.free_text import CARD_NUMBER_IN_FREE_TEXT
from fintech.problems import DomainError
from ledger.admin.money import money
from ledger.currencies import currency_exponent
from ledger.models import ReviewCase
from ledger.models.reviews import DECISION_REASON_MAX_LENGTH
from ledger.services.four_eyes import review_approval_request
from ledger.services.reviews import DECIDE_PERMISSION, review_approval_needs_second_officer, review_case_decide


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
    """The rules named in cases, as they were named when the case was raised (a renamed rule keeps its cases)."""

    title = "rule"
    parameter_name = "rule"
    MAX_CHOICES = 200

    def lookups(self, request, model_admin):
        names: set[str] = set()
        for reasons in ReviewCase.objects.order_by("-id").values_list("reasons", flat=True)[:5000]:
            names.update(str(reason) for reason in reasons or [])
        return [(name, name) for name in sorted(names)[: self.MAX_CHOICES]]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(reasons__contains=[self.value()])


class ReviewCaseAmountFilter(admin.SimpleListFilter):
    """Amount bands in major units, whatever the currency (1,000.00 EUR and 1,000 JPY are both "1,000 or more")."""

    title = "amount"
    parameter_name = "amount_at_least"
    BANDS = (1_000, 10_000, 100_000)

    def lookups(self, request, model_admin):
        return [(str(band), f"{band:,} or more (major units)") for band in self.BANDS]

    def queryset(self, request, queryset):
        if self.value() not in {str(band) for band in self.BANDS}:
            return queryset
        band = int(self.value())
        at_least = Q(pk__in=[])
        for currency in queryset.values_list("currency", flat=True).distinct():
            at_least |= Q(currency=currency, amount_minor__gte=band * 10 ** currency_exponent(currency))
        return queryset.filter(at_least)


class ReviewCaseDecisionForm(forms.Form):
    """What the officer decides and why; the reason is kept in the case and the audit trail."""

    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")], widget=forms.RadioSelect)
    reason = forms.CharField(
        max_length=DECISION_REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Recorded in the case and the audit trail; do not paste PII or card numbers here.",
    )


# What a decision does, said before the officer makes it.
DECISION_EFFECTS = {
    ReviewCase.Kind.HELD_MOVEMENT: (
        "The money is held and nothing is posted yet. Approving posts the movement the customer asked for; "
        "rejecting releases the held money back to the customer (not executed)."
    ),
    ReviewCase.Kind.FLAGGED_MOVEMENT: (
        "The transfer is already posted. Approving or rejecting records your decision; neither moves money "
        "(a rejection does not reverse the transfer: that is a separate act)."
    ),
}


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
    list_filter = ("status", "kind", "currency", ReviewCaseAgeFilter, ReviewCaseAmountFilter, ReviewCaseRuleFilter)
    list_select_related = ("assignee", "decided_by")
    ordering = ("opened_at", "id")
    # The case's own id, or the id the customer was given (a held transfer's promised id, a posted transfer's).
    search_fields = ("=public_id", "=transfer__public_id", "=hold__transfer_public_id", "=hold__public_id")
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
        return money(case.amount_minor, case.currency)

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
            approve = form.cleaned_data["decision"] == "approve"
            try:
                if approve and review_approval_needs_second_officer(case):
                    # Above the four-eyes amount: the approval is a request a second officer approves (ADR 0015).
                    approval = review_approval_request(
                        case=case, officer=request.user, reason=form.cleaned_data["reason"], request=request
                    )
                    messages.success(
                        request, f"Request {approval.public_id} recorded: a second officer approves this case."
                    )
                    return HttpResponseRedirect(reverse("admin:accounts_approvalrequest_change", args=[approval.pk]))
                decided = review_case_decide(
                    case_public_id=case.public_id,
                    approve=approve,
                    reason=form.cleaned_data["reason"],
                    officer=request.user,
                    request=request,
                )
            except DomainError as refused:
                # Shown with the form as the officer filled it: a refusal must not throw their reason away;
                # except a reason holding a card number, which is never echoed back into a page.
                messages.error(request, refused.detail)
                if refused.code == CARD_NUMBER_IN_FREE_TEXT:
                    form = ReviewCaseDecisionForm(initial={"decision": form.cleaned_data["decision"]})
                case.refresh_from_db()
            else:
                messages.success(request, f"Review case {decided.public_id} {decided.get_status_display().lower()}.")
                return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "title": "Decide review case",
            "opts": self.opts,
            "original": case,
            "amount": self.amount(case),
            "decision_description": DECISION_EFFECTS[case.kind],
            "form": form,
            "decide_url": request.path,
            "change_url": change_url,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/ledger/reviewcase/decide.html", context)
