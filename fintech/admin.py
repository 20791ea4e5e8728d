"""Admin pieces shared by the apps."""

from django.contrib import admin
from django.http import HttpRequest


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """Rows the admin shows but never adds, changes or deletes, superusers included.

    Their writes go through services (locks, audit, the vault), so an admin
    form would be a way around those rules. Django then offers no delete
    action either (it needs the delete permission).
    """

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
