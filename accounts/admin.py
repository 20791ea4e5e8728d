from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts.api_keys.exceptions import ApiKeyAlreadyRevoked
from accounts.api_keys.services import partner_api_key_revoke
from accounts.forms import UserChangeForm, UserCreationForm
from accounts.models import CustomerProfile, PartnerApiKey, PaymentCard, User
from audit.services.events import Actor
from fintech.admin import ReadOnlyModelAdmin


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    ordering = ("id",)
    list_display = ("public_id", "email", "is_staff", "is_active", "date_joined")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("email", "public_id")
    readonly_fields = ("public_id", "date_joined", "last_login")
    fieldsets = (
        (None, {"fields": ("public_id", "email", "password")}),
        (_("Permissions"), {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    # Only a superuser makes superusers or grants single permissions: a role holding change_user
    # (security_admin) assigns roles, which are declared in code (accounts/roles.py), and must not
    # reach tokenvault.detokenize_* or everything at once, for a colleague or for itself (ADR 0012).
    superuser_only_fields = ("is_superuser", "user_permissions")

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        readonly = tuple(super().get_readonly_fields(request, obj))
        if request.user.is_superuser:
            return readonly
        readonly = (*readonly, *self.superuser_only_fields)
        if obj is not None and obj.pk == request.user.pk:
            # Nobody but a superuser changes their own roles: a security admin adding itself to
            # compliance_officer would gain audit.unmask_pii without a second person.
            readonly = (*readonly, "groups", "is_staff", "is_active")
        return readonly


PII_ON_FILE = "•••• on file (encrypted)"
PII_ABSENT = "—"


@admin.register(CustomerProfile)
class CustomerProfileAdmin(admin.ModelAdmin):
    """Tier and status are staff's to change; identity is only ever shown as "on file".

    Showing even a masked fragment would mean decrypting, i.e. a `pii.read`
    with a purpose for every page view; officers who need a value in clear go
    through `accounts.selectors.customer_pii_read`, which asks for a purpose
    and records it. The national ID's vault token is not shown either: it is
    the handle a detokenize call would need.
    """

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


# --- Partner API keys (seed 002) ---------------------------------------------------
# Imports for the appended block sit here, not at the top, so this change only appends.


ADMIN_REVOKE_MAX_KEYS = 200


@admin.register(PartnerApiKey)
class PartnerApiKeyAdmin(ReadOnlyModelAdmin):
    """Read-only, plus one action: revoke. Keys are issued by `manage.py partner_api_key_issue`.

    Adding is off because the admin has no safe place to show a raw key once;
    changing is off because nothing about a key may change but its revocation,
    which goes through the service (audit event, reason); deleting is off
    because the row is evidence of what could call the API and when.
    """

    list_display = ("prefix", "name", "application", "scopes", "expires_at", "revoked_at", "last_used_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter), "expires_at")
    search_fields = ("prefix", "name", "application__client_id", "application__name")
    list_select_related = ("application",)
    ordering = ("-created_at",)
    fields = (
        "prefix",
        "name",
        "application",
        "scopes",
        "created_at",
        "created_by",
        "expires_at",
        "revoked_at",
        "revoked_reason",
        "last_used_at",
    )  # never key_checksum: not the key, but nothing anyone needs to see either
    readonly_fields = fields
    actions = ["revoke_selected"]

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.revoke_partnerapikey")

    @admin.action(description="Revoke selected keys", permissions=["revoke"])
    def revoke_selected(self, request: HttpRequest, queryset) -> None:
        staff_id = str(request.user.public_id)
        prefixes = list(
            queryset.filter(revoked_at__isnull=True)
            .order_by("pk")
            .values_list("prefix", flat=True)[: ADMIN_REVOKE_MAX_KEYS + 1]
        )
        if len(prefixes) > ADMIN_REVOKE_MAX_KEYS:
            self.message_user(
                request, f"Select at most {ADMIN_REVOKE_MAX_KEYS} active keys at a time; nothing was revoked.", "error"
            )
            return
        revoked = 0
        for prefix in prefixes:
            try:
                partner_api_key_revoke(
                    prefix=prefix, reason=f"revoked in admin by {staff_id}", actor=Actor(staff=staff_id)
                )
            except ApiKeyAlreadyRevoked:
                continue  # revoked by someone else meanwhile; their reason stands
            revoked += 1
        self.message_user(request, f"Revoked {revoked} key(s).")


@admin.register(PaymentCard)
class PaymentCardAdmin(ReadOnlyModelAdmin):
    """Cards on file, read-only: the token and the fragments PCI DSS lets anyone see, never the holder.

    No add (a number must go through the vault), no change, no delete: deleting
    a card crypto-shreds its vault value, which only `payment_card_delete` does.
    Staff who need a number in clear use the vault's detokenize flow (ADR 0012).
    """

    list_display = ("public_id", "owner", "brand", "last4", "exp_month", "exp_year", "status", "created_at")
    list_filter = ("status", "brand")
    search_fields = ("public_id", "owner__email", "owner__public_id", "token")
    list_select_related = ("owner",)
    ordering = ("-created_at",)
    fields = (
        "public_id",
        "owner",
        "token",
        "brand",
        "last4",
        "exp_month",
        "exp_year",
        "status",
        "created_at",
        "deleted_at",
    )
    readonly_fields = fields
