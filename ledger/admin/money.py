"""Money rows in the admin: read-only for everybody, superusers included; amounts shown in major units.

Balances, transfers, postings and holds change only through `ledger.services`
(locks, invariants, audit): the admin shows them and never edits or deletes
them. Staff read "1,234.56 EUR", never "123456": minor units are for machines.
"""

from __future__ import annotations

from django.contrib import admin

from fintech.admin import ReadOnlyModelAdmin
from ledger.currencies import format_amount
from ledger.models import Hold, LedgerAccount, Posting, Transfer


def money(amount_minor: int | None, currency: str) -> str:
    """`123456`, EUR -> "1,234.56 EUR": major units, thousands grouped, with the currency."""
    if amount_minor is None:
        return "-"
    units, _, fraction = format_amount(amount_minor, currency).partition(".")
    sign, digits = ("-", units[1:]) if units.startswith("-") else ("", units)
    grouped = f"{sign}{int(digits):,}" + (f".{fraction}" if fraction else "")
    return f"{grouped} {currency}"


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyModelAdmin):
    list_display = ("public_id", "kind", "purpose", "currency", "status", "posted", "held", "credit_limit", "version")
    list_filter = ("kind", "status", "currency")
    search_fields = ("=public_id",)
    raw_id_fields = ("owner",)

    @admin.display(description="posted", ordering="posted_minor")
    def posted(self, account: LedgerAccount) -> str:
        return money(account.posted_minor, account.currency)

    @admin.display(description="held", ordering="held_minor")
    def held(self, account: LedgerAccount) -> str:
        return money(account.held_minor, account.currency)

    @admin.display(description="credit limit", ordering="credit_limit_minor")
    def credit_limit(self, account: LedgerAccount) -> str:
        return money(account.credit_limit_minor, account.currency)


class PostingInline(admin.TabularInline):
    """A transfer's postings, each in major units with the account's balance after it."""

    model = Posting
    fields = ("account", "amount", "balance_after", "account_version", "created_at")
    readonly_fields = fields
    can_delete = False
    extra = 0

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="amount")
    def amount(self, posting: Posting) -> str:
        return money(posting.amount_minor, posting.currency)

    @admin.display(description="balance after")
    def balance_after(self, posting: Posting) -> str:
        return money(posting.balance_after_minor, posting.currency)


@admin.register(Transfer)
class TransferAdmin(ReadOnlyModelAdmin):
    list_display = ("public_id", "kind", "amount", "flagged_for_review", "created_at")
    list_filter = ("kind", "currency", "flagged_for_review")
    search_fields = ("=public_id", "=client_id")
    date_hierarchy = "created_at"
    inlines = [PostingInline]
    raw_id_fields = ("initiated_by", "reverses", "hold")

    @admin.display(description="amount", ordering="amount_minor")
    def amount(self, transfer: Transfer) -> str:
        return money(transfer.amount_minor, transfer.currency)


@admin.register(Hold)
class HoldAdmin(ReadOnlyModelAdmin):
    list_display = ("public_id", "purpose", "status", "amount", "captured", "expires_at")
    list_filter = ("status", "purpose")
    search_fields = ("=public_id", "=transfer_public_id")
    raw_id_fields = ("account", "destination", "created_by")

    @admin.display(description="amount", ordering="amount_minor")
    def amount(self, hold: Hold) -> str:
        return money(hold.amount_minor, hold.currency)

    @admin.display(description="captured", ordering="captured_minor")
    def captured(self, hold: Hold) -> str:
        return money(hold.captured_minor, hold.currency)
