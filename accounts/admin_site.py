"""The admin, open only to active staff whose session proved a second factor.

Like django-otp's `OTPAdminSite`, but without a login form of its own: the
admin's login page sends people through the one throttled login
(`/accounts/login/`), then to the second-factor step or, for staff without an
authenticator, to enrolment. Customers are refused (403), never redirected in
a loop.

Activated by listing `accounts.admin_site.FintechAdminConfig` instead of
`django.contrib.admin` in INSTALLED_APPS: `admin.site` is then this class, and
every `@admin.register` and `admin.site.urls` keep working unchanged.

This module is imported while apps load (it holds an AppConfig): nothing that
imports models (auth views, accounts.mfa) at module level.
"""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig
from django.contrib.admin.sites import AdminSite
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache


def user_may_use_admin(request: HttpRequest) -> bool:
    """Active staff, verified by a second factor in this session. The one rule for the admin."""
    user = request.user
    is_verified = getattr(user, "is_verified", None)
    return bool(user.is_active and user.is_staff and callable(is_verified) and is_verified())


class MfaAdminSite(AdminSite):
    # The platform's name instead of "Django administration"; the index starts with where each role's work is.
    site_header = "Fintech back office"
    site_title = "Fintech back office admin"
    index_title = "Site administration of the Fintech back office"
    index_template = "admin/fintech_index.html"

    def index(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        from accounts.admin_index import role_guide_for

        extra_context = {**(extra_context or {}), "role_guide": role_guide_for(request.user)}
        return super().index(request, extra_context)

    def has_permission(self, request: HttpRequest) -> bool:
        return user_may_use_admin(request)

    @method_decorator(never_cache)
    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        from django.contrib.auth.views import redirect_to_login

        from accounts.mfa import user_has_mfa
        from accounts.web_views import next_path_safe

        next_path = next_path_safe(request, request.GET.get(REDIRECT_FIELD_NAME)) or reverse(
            "admin:index", current_app=self.name
        )
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(next_path, reverse("login"))
        if self.has_permission(request):
            return redirect(next_path)
        if not (user.is_active and user.is_staff):
            return render(request, "accounts/admin_denied.html", status=403)
        step = "login-mfa" if user_has_mfa(user) else "mfa-setup"
        return redirect_to_login(next_path, reverse(step))


class FintechAdminConfig(AdminConfig):
    """`django.contrib.admin` with `MfaAdminSite` as the default `admin.site`."""

    default_site = "accounts.admin_site.MfaAdminSite"
