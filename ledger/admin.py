"""Staff views of the ledger: money rows are read-only; limits and rules are data staff maintain.

Balances, transfers, postings and holds change only through `ledger.services`
(locks, invariants, audit): the admin shows them and never edits or deletes
them, superusers included. Limits and rules are edited here; django-auditlog
records every change (ledger/apps.py) into the sealed trail.
"""

from django.contrib import admin

from fintech.admin import ReadOnlyModelAdmin
from ledger.models import Hold, LedgerAccount, Posting, Transfer, TransferLimit, TransferRule


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
