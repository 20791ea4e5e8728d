"""The admins that django-oauth-toolkit, django-otp and django-auditlog register by default, made safe or removed.

Each of them showed a person by email or let staff search emails by
substring (`user__email`, `actor__email`), and some showed or edited
credentials. What a compliance team wants of each:

* OAuth applications: kept, read-only. Staff need to see which partner and
  app clients exist (API keys point at them); clients are registered and
  rotated by `accounts.oauth.clients`, which audits it, and policy changes go
  through four eyes, so the admin's edit form (grant type, redirect URIs,
  skip authorization) was a way around both. No secret, exact client id search.
* Access and refresh tokens, grants, ID tokens: removed. They are live
  credentials of customers; listing them per person is tracking, searching
  them by email was an email oracle, and revoking from the admin bypassed the
  audited sign-out (a password reset revokes every family through a service).
* TOTP and static (recovery code) devices: removed. The TOTP admin shows the
  secret key and its QR code, the static one the recovery codes; adding or
  deleting a device is a second-factor reset, which is a four-eyes request.
* django-auditlog's log: kept, read-only, exact search only (object id,
  correlation id, actor public id or exact email). ADR 0005 keeps it for its
  history view; values of people are masked when written (accounts/apps.py),
  actors appear as `user <public id>`, and nothing in it may be deleted here.
"""

from __future__ import annotations

import auditlog.admin
import django_otp.plugins.otp_static.admin
import django_otp.plugins.otp_totp.admin
import oauth2_provider.admin
from auditlog.models import LogEntry
from django.contrib import admin
from django.contrib.auth.models import Group
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from oauth2_provider.models import AccessToken, Application, Grant, IDToken, RefreshToken

from accounts.models import OAuthClientCertificate
from accounts.selectors import user_exact_q
from fintech.admin import ReadOnlyModelAdmin

# Imported for their side effect: their registrations must exist before they are replaced here.
THIRD_PARTY_ADMINS = (auditlog.admin, django_otp.plugins.otp_static.admin, django_otp.plugins.otp_totp.admin,
                      oauth2_provider.admin)  # fmt: skip
REMOVED = (AccessToken, RefreshToken, Grant, IDToken, TOTPDevice, StaticDevice)


class ApplicationAdmin(ReadOnlyModelAdmin):
    """OAuth clients, read-only; the owning user (if any) appears as `user <public id>`."""

    list_display = ("name", "client_id", "client_type", "authorization_grant_type", "registration_source", "created")
    list_filter = ("client_type", "authorization_grant_type", "registration_source")
    search_fields = ("=client_id", "name")  # a client's name is a product's, not a person's
    ordering = ("name",)
    fields = (
        "name",
        "client_id",
        "client_type",
        "authorization_grant_type",
        "redirect_uris",
        "post_logout_redirect_uris",
        "allowed_origins",
        "skip_authorization",
        "algorithm",
        "registration_source",
        "user",
        "created",
        "updated",
    )  # never client_secret, hashed or not
    readonly_fields = (*fields, "token_endpoint_auth_method", "pinned_certificate")

    def get_fields(self, request: HttpRequest, obj=None):
        return (*self.fields, "token_endpoint_auth_method", "pinned_certificate")

    @admin.display(description="token endpoint authentication")
    def token_endpoint_auth_method(self, obj: Application) -> str:
        if obj.client_type != Application.CLIENT_CONFIDENTIAL:
            return "none (public client, PKCE)"
        pinned = OAuthClientCertificate.objects.filter(application=obj).exists()
        return "self_signed_tls_client_auth (RFC 8705)" if pinned else "client_secret_basic"

    @admin.display(description="pinned certificate (x5t#S256)")
    def pinned_certificate(self, obj: Application) -> str:
        """Changed only through a four-eyes request (`partner_certificate_pin`); public data, so shown whole."""
        pin = OAuthClientCertificate.objects.filter(application=obj).first()
        if pin is None:
            return "-"
        return f"{pin.x5t_s256} ({pin.subject}, valid until {pin.not_after.date().isoformat()})"


class LogEntryAdmin(auditlog.admin.LogEntryAdmin):
    """django-auditlog's model-change log, read-only for everyone, searched by exact identifiers only."""

    search_fields = ("=object_pk", "=cid")  # shows the search box; the search itself is get_search_results
    search_help_text = "Exact object id, correlation id, or the actor's exact public id or email."

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(object_pk=term) | Q(cid=term)
        actor = user_exact_q(term, prefix="actor__")
        return queryset.filter(condition | actor if actor is not None else condition), False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


for model in (*REMOVED, Application, LogEntry):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
admin.site.register(Application, ApplicationAdmin)
admin.site.register(LogEntry, LogEntryAdmin)


class RoleAdmin(ReadOnlyModelAdmin):
    """Roles are declared in code (accounts/roles.py) and synced at migrate: shown, never edited here.

    Editing a group's permissions would change every holder's access at once,
    around four eyes; a role change is a code change, reviewed like one.
    """

    list_display = ("name",)
    filter_horizontal = ()
    fields = ("name", "permissions")
    readonly_fields = fields


if admin.site.is_registered(Group):
    admin.site.unregister(Group)
admin.site.register(Group, RoleAdmin)
