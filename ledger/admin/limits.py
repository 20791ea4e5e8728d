"""Limits and rules: data operations staff maintain, entered and shown in major units (ADR 0014).

An operator typing "30.00" into a field of minor units set a threshold a
hundred times lower than meant (found in review): every amount here is a
decimal in the row's currency, parsed exactly (`ledger.currencies.parse_amount`:
no more decimals than the currency has), stored in minor units.
django-auditlog records every change (ledger/apps.py) into the sealed trail.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin

from accounts.approvals.change_admin import FourEyesChangeAdmin, FourEyesReasonForm
from fintech.problems import DomainError
from ledger.admin.money import money
from ledger.currencies import format_amount, parse_amount
from ledger.models import TransferLimit, TransferRule
from ledger.services.four_eyes import row_change_request


class MajorUnitsForm(FourEyesReasonForm):
    """Form fields in major units for the model's `*_minor` fields, converted with the row's currency.

    `MAJOR_UNIT_FIELDS` maps a form field to its model field; the model field is
    left out of the form and written from the parsed amount.
    """

    MAJOR_UNIT_FIELDS: dict[str, str] = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            for field, model_field in self.MAJOR_UNIT_FIELDS.items():
                value = getattr(self.instance, model_field)
                if value is not None:
                    self.initial[field] = format_amount(value, self.instance.currency)

    def clean(self):
        cleaned = super().clean()
        currency = cleaned.get("currency") or ""
        for field, model_field in self.MAJOR_UNIT_FIELDS.items():
            text = (cleaned.get(field) or "").strip()
            if not text:
                setattr(self.instance, model_field, None)
                continue
            try:
                setattr(self.instance, model_field, parse_amount(text, currency))
            except DomainError as refused:
                self.add_error(field, f"{refused.detail} (in {currency or 'the currency'}, e.g. 10000.00)")
        return cleaned


def _amount_field(label: str, *, required: bool) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=required,
        max_length=32,
        help_text="In major units of the currency above, e.g. 10000.00 EUR or 150000 JPY; no thousands separators.",
    )


class TransferLimitForm(MajorUnitsForm):
    MAJOR_UNIT_FIELDS = {"per_transfer_max": "per_transfer_max_minor", "daily_outgoing_max": "daily_outgoing_max_minor"}
    per_transfer_max = _amount_field("Per movement, at most", required=True)
    daily_outgoing_max = _amount_field("Per business day, at most", required=True)

    class Meta:
        model = TransferLimit
        fields = ("tier", "currency")


class TransferRuleForm(MajorUnitsForm):
    MAJOR_UNIT_FIELDS = {"threshold": "threshold_minor"}
    threshold = _amount_field("Threshold (review rules)", required=False)

    class Meta:
        model = TransferRule
        fields = ("name", "kind", "currency", "max_count", "window_minutes", "action", "active")


class LimitOrRuleAdmin(FourEyesChangeAdmin):
    """Saving a limit or rule asks for it: the row changes when a second operator approves (ADR 0015)."""

    def four_eyes_request(self, request, obj, reason: str):
        return row_change_request(row=obj, requested_by=request.user, reason=reason, request=request)


@admin.register(TransferLimit)
class TransferLimitAdmin(LimitOrRuleAdmin):
    form = TransferLimitForm
    list_display = ("tier", "currency", "per_transfer_max", "daily_outgoing_max")
    list_filter = ("tier", "currency")

    @admin.display(description="per movement", ordering="per_transfer_max_minor")
    def per_transfer_max(self, limit: TransferLimit) -> str:
        return money(limit.per_transfer_max_minor, limit.currency)

    @admin.display(description="per business day", ordering="daily_outgoing_max_minor")
    def daily_outgoing_max(self, limit: TransferLimit) -> str:
        return money(limit.daily_outgoing_max_minor, limit.currency)


@admin.register(TransferRule)
class TransferRuleAdmin(LimitOrRuleAdmin):
    form = TransferRuleForm
    list_display = ("name", "kind", "currency", "threshold", "max_count", "window_minutes", "action", "active")
    list_filter = ("kind", "action", "active")

    @admin.display(description="threshold", ordering="threshold_minor")
    def threshold(self, rule: TransferRule) -> str:
        return money(rule.threshold_minor, rule.currency) if rule.threshold_minor is not None else "-"
