from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from accounts.api_keys.exceptions import ApiKeyAlreadyRevoked
from accounts.api_keys.services import partner_api_key_revoke
from accounts.forms import UserChangeForm, UserCreationForm
from accounts.models import PartnerApiKey, PaymentCard, User
from accounts.selectors import public_id_parse, user_exact_q
from audit.masking import email_masked
from audit.services.events import Actor
from fintech.admin import ReadOnlyModelAdmin

EXACT_PERSON_SEARCH_HELP = "Exact public id or exact email address; never part of one."


def people_search_results(queryset: QuerySet, search_term: str, *, prefix: str = "", also: Q | None = None):
    """`get_search_results` for admins listing people or their things: exact matches only (`user_exact_q`).

    A term that is neither a public id nor an address matches nothing, unless
    `also` (the model's own exact identifiers) matches it.
    """
    term = search_term.strip()
    if not term:
        return queryset, False
    condition = user_exact_q(term, prefix=prefix)
    if also is not None:
        condition = also if condition is None else condition | also
    return (queryset.none() if condition is None else queryset.filter(condition)), False


@admin.register(User)
class UserAdmin(ReadOnlyModelAdmin, DjangoUserAdmin):
    """Customers and staff, view-only for everyone, superusers included; the email only ever masked.

    Nobody types anyone's password here: staff set theirs through their
    invitation, customers their own (so there is no password field, and the
    password page answers 404). Roles, flags and permissions change only
    through a four-eyes approval request, never by one person in this form;
    staff join by invitation, so adding is off too. Search is exact (public id
    or whole email) so the box is no oracle for addresses, and a public id
    never turns into an email: that takes the audited unmask.
    """

    form = UserChangeForm
    add_form = UserCreationForm
    ordering = ("id",)
    list_display = ("public_id", "masked_email", "is_staff", "is_active", "roles", "date_joined")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("=public_id",)  # shows the search box; the search itself is get_search_results
    search_help_text = EXACT_PERSON_SEARCH_HELP
    fieldsets = (
        (None, {"fields": ("public_id", "masked_email")}),
        (_("Permissions"), {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    readonly_fields = (
        "public_id",
        "masked_email",
        "is_active",
        "is_staff",
        "is_superuser",
        "groups",
        "user_permissions",
        "last_login",
        "date_joined",
    )

    change_form_template = "admin/accounts/user/change_form.html"

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).prefetch_related("groups")

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        """Links to the four-eyes requests about this person (ADR 0015): nothing here changes them directly."""
        person = self.get_object(request, unquote(object_id))
        links = []
        if person is not None:
            ask = "admin:accounts_approvalrequest_ask"
            if request.user.has_perm("accounts.change_user"):
                links.append(("Request an access change", reverse(
                    "admin:accounts_approvalrequest_access", args=[person.public_id])))  # fmt: skip
                if person.is_staff:
                    links.append(("Reset their second factor", reverse(
                        ask, args=["staff-second-factor", person.public_id])))  # fmt: skip
            if not person.is_staff and request.user.has_perm("accounts.change_customerprofile"):
                links.append(("Reset a lost second factor", reverse(
                    ask, args=["customer-second-factor", person.public_id])))  # fmt: skip
        extra_context = {**(extra_context or {}), "four_eyes_links": links}
        return super().change_view(request, object_id, form_url, extra_context)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        return people_search_results(queryset, search_term)

    def lookup_allowed(self, lookup: str, value, request=None) -> bool:
        # `?email__startswith=a` would be the substring search the search box refuses, one letter at a time.
        return not lookup.startswith("email") and super().lookup_allowed(lookup, value, request)

    def user_change_password(self, request: HttpRequest, id, form_url: str = "") -> HttpResponse:
        raise Http404("Passwords are set by their owners, never in the admin.")

    @admin.display(description="email")
    def masked_email(self, user: User) -> str:
        return email_masked(user.email)

    @admin.display(description="roles")
    def roles(self, user: User) -> str:
        return ", ".join(sorted(group.name for group in user.groups.all())) or self.get_empty_value_display()

    # --- the one write staff make on a customer's credentials: sending them the reset email ---------
    actions = ["password_reset_email_send"]
    password_reset_max_users = 20  # per action: a bounded batch, each send audited and throttled per customer

    def has_password_reset_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.change_user")

    @admin.action(description="Send password reset email", permissions=["password_reset"])
    def password_reset_email_send(self, request: HttpRequest, queryset) -> None:
        """Staff may only send a customer the reset link (accounts/password_reset.py), never set a password."""
        from accounts import password_reset as reset

        users = list(queryset.order_by("pk")[: self.password_reset_max_users + 1])
        if len(users) > self.password_reset_max_users:
            self.message_user(
                request, f"Select at most {self.password_reset_max_users} users at a time; nothing was sent.", "error"
            )
            return
        actor = Actor(staff=str(request.user.public_id))
        outcomes = {"sent": 0, "refused": 0, "throttled": 0, "failed": 0}
        for user in users:
            try:
                reset.customer_password_reset_send(user=user, actor=actor, request=request)
            except reset.PasswordResetNotAllowed:
                outcomes["refused"] += 1
            except reset.PasswordResetThrottled:
                outcomes["throttled"] += 1
            except reset.PasswordResetDeliveryFailed:
                outcomes["failed"] += 1
            except reset.PasswordResetUnavailable:
                self.message_user(request, "Sending is paused (rate limit store unavailable); try again.", "error")
                break
            else:
                outcomes["sent"] += 1
        if outcomes["sent"]:
            self.message_user(request, f"Sent a password reset email to {outcomes['sent']} customer(s).")
        if outcomes["refused"]:
            self.message_user(
                request,
                f"Refused {outcomes['refused']} account(s): staff and inactive accounts are never reset by email "
                "(staff recover through the second-factor reset with a second approver).",
                "error",
            )
        if outcomes["throttled"] or outcomes["failed"]:
            self.message_user(
                request,
                f"Not sent: {outcomes['throttled']} rate-limited (too many recent emails), "
                f"{outcomes['failed']} refused by the mail server.",
                "warning",
            )


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
    search_fields = ("=public_id", "=token")  # shows the search box; the search itself is get_search_results
    search_help_text = "Exact card public id or token, or the owner's exact public id or email."
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
    )  # never holder: the cardholder's name is PII, encrypted like the profile's
    readonly_fields = fields

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        term = search_term.strip()
        card = Q(token=term)
        public_id = public_id_parse(term)
        if public_id is not None:
            card |= Q(public_id=public_id)
        return people_search_results(queryset, term, prefix="owner__", also=card)


# Customer profiles (four-eyes status and tier, the audited identity reveal), the third-party admins
# (re-registered masked and read-only, or removed) and the four-eyes queue register on import.
from accounts import admin_profiles, admin_third_party  # noqa: E402, F401
from accounts.approvals import admin as approvals_admin  # noqa: E402, F401
