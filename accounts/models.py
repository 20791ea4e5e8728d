"""People: one user model for customers and staff, logging in by email."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.password_macs import PasswordMacMixin
from tokenvault.fields import EncryptedDateField, EncryptedIntegerField, EncryptedJSONField, EncryptedTextField
from tokenvault.tokens import TOKEN_PREFIXES

# Encrypted PII is bound to its owner: a blob moved to another customer's row fails to decrypt.
PII_BOUND_TO = "user.public_id"
PII_BOUND_TO_OWNER = "owner.public_id"


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **fields) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)  # None gives an unusable password
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **fields) -> User:
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create(email, password, **fields)

    def create_superuser(self, email: str, password: str | None = None, **fields) -> User:
        fields.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **fields)

    def get_by_natural_key(self, username: str) -> User:
        # Emails are unique case-insensitively; log in with any casing.
        return self.get(email__iexact=username)


class User(PasswordMacMixin, AbstractBaseUser, PermissionsMixin):
    """A person who logs in: a customer, or staff (is_staff) working in the admin.

    `public_id` is what the API shows; the integer key never leaves the system.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField(max_length=254, unique=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)
    # HMAC of (pk, password hash) under a key the database does not hold (accounts.password_macs, issue 12):
    # a hash rewritten with the database login alone is never compared. Set by the methods below, never by hand.
    password_mac = models.CharField(max_length=64, blank=True, default="", editable=False)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
            models.CheckConstraint(condition=models.Q(email=Lower("email")), name="accounts_user_email_lowercase"),
        ]

    def __str__(self) -> str:
        # Never the email: str() ends up in logs, admin history and audit reprs.
        return f"user {self.public_id}"


class CustomerProfile(models.Model):
    """What the platform knows about a customer beyond their login.

    PII is never in clear here (ADR 0013). Name, date of birth, phone, postal
    address and credit score are AES-256-GCM envelopes (`tokenvault.fields`)
    bound to this table, their column and the owner's `public_id`; read them
    only through `accounts.selectors.customer_pii_read`, which audits the read.
    The national ID is not here at all, not even encrypted: only the vault's
    convergent token, unique, so one person cannot onboard twice.
    `phone_index` is an HMAC blind index of the E.164 phone, unique among
    customers (it is the number one-time codes and fraud calls go to).
    """

    class Tier(models.TextChoices):
        STANDARD = "standard", "Standard"
        PREMIUM = "premium", "Premium"
        BUSINESS = "business", "Business"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        BLOCKED = "blocked", "Blocked"
        CLOSED = "closed", "Closed"

    user = models.OneToOneField(User, on_delete=models.PROTECT, related_name="customer_profile")
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.STANDARD)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # --- identity (PII): encrypted, bound to the owner; see the class docstring ---------------
    full_name = EncryptedTextField(bound_to=PII_BOUND_TO, max_length=200, null=True)
    date_of_birth = EncryptedDateField(bound_to=PII_BOUND_TO, null=True)
    phone = EncryptedTextField(bound_to=PII_BOUND_TO, max_length=16, null=True)
    phone_index = models.CharField(max_length=64, null=True, unique=True, editable=False)  # noqa: DJ001
    postal_address = EncryptedJSONField(bound_to=PII_BOUND_TO, max_plaintext_bytes=2048, null=True)
    credit_score = EncryptedIntegerField(bound_to=PII_BOUND_TO, null=True)
    national_id_token = models.CharField(max_length=40, null=True, unique=True, editable=False)  # noqa: DJ001
    identity_captured_at = models.DateTimeField(null=True, editable=False)
    # After staff reset a customer's lost second factor (four eyes), no money leaves until then (24 h cool-off):
    # whoever got the factor reset may be the customer, or someone who fooled the identity check.
    sending_paused_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(tier__in=["standard", "premium", "business"]), name="accounts_profile_tier_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["active", "blocked", "closed"]), name="accounts_profile_status_valid"
            ),
            # Identity is captured all at once (accounts.services.customer_identity_capture), or not at all.
            models.CheckConstraint(
                condition=models.Q(
                    identity_captured_at__isnull=True,
                    national_id_token__isnull=True,
                    full_name__isnull=True,
                    date_of_birth__isnull=True,
                    phone__isnull=True,
                    phone_index__isnull=True,
                    postal_address__isnull=True,
                )
                | models.Q(
                    identity_captured_at__isnull=False,
                    national_id_token__isnull=False,
                    full_name__isnull=False,
                    date_of_birth__isnull=False,
                    phone__isnull=False,
                    phone_index__isnull=False,
                    postal_address__isnull=False,
                ),
                name="accounts_profile_identity_all_or_nothing",
            ),
            models.CheckConstraint(
                condition=models.Q(national_id_token__isnull=True)
                | models.Q(national_id_token__regex=r"^tok_nid_[a-z2-7]{26}$"),  # noqa: S106  # nosec B106 - a token shape
                name="accounts_profile_national_id_is_a_vault_token",
            ),
            models.CheckConstraint(
                condition=models.Q(phone_index__isnull=True) | models.Q(phone_index__regex=r"^[0-9a-f]{64}$"),
                name="accounts_profile_phone_index_hmac_hex",
            ),
        ]

    def __str__(self) -> str:
        return f"customer {self.user.public_id}"


class OAuthSession(models.Model):
    """One login behind a family of rotating refresh tokens: when it began and when MFA was last proven.

    Absolute refresh lifetime counts from `authenticated_at`; step-up
    (RFC 9470) reads `mfa_verified_at`. Keyed by DOT's refresh-token family,
    which every rotated refresh token of the login shares.
    """

    token_family = models.UUIDField(primary_key=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="oauth_sessions")
    client_id = models.CharField(max_length=100)
    authenticated_at = models.DateTimeField()
    mfa_verified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"oauth session {self.token_family}"


class OAuthClientPolicy(models.Model):
    """What a client may do beyond its grant type, decided by staff, not by the client."""

    application = models.OneToOneField(
        "oauth2_provider.Application", on_delete=models.CASCADE, related_name="client_policy"
    )
    can_introspect = models.BooleanField(default=False, help_text="may call the introspection endpoint")
    # Where `transfer.posted` events for this client's transfers are POSTed (ledger/outbox/webhooks.py).
    # https only; plain http only to a loopback address (tests, local development), which the
    # sender additionally refuses unless WEBHOOK_ALLOW_LOOPBACK_HTTP is set. No credentials in the URL:
    # requests are signed with a secret derived per client (`partner_webhook_secret`).
    webhook_url = models.URLField(
        max_length=500, blank=True, help_text="https URL receiving signed transfer events; blank: none"
    )
    # Which vault token types this client may turn back into values (`vault:detokenize`, issue 6).
    # Empty: none, and the authorization server refuses to issue that scope to the client at all.
    detokenize_token_types = ArrayField(
        models.CharField(max_length=16),
        default=list,
        blank=True,
        help_text='vault token types this client may detokenize: "card", "national_id"',
    )

    class Meta:
        verbose_name = "OAuth client policy"
        verbose_name_plural = "OAuth client policies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(detokenize_token_types__contained_by=["card", "national_id"]),
                name="accounts_client_policy_detokenize_token_types_known",
                violation_error_message='Detokenizable token types are "card" and "national_id".',
            ),
            models.CheckConstraint(
                condition=models.Q(webhook_url="")
                | models.Q(
                    webhook_url__regex=r"^(https://[A-Za-z0-9.-]+|http://(127\.0\.0\.1|localhost|\[::1\]))"
                    r"(:[0-9]{1,5})?(/[^\s#]*)?$"
                ),
                name="accounts_client_policy_webhook_url_https",
                violation_error_message=(
                    "The webhook URL must be https (http only on a loopback address), without user info or fragment."
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"policy of {self.application_id}"


# --- Partner API keys (seed 002) ---------------------------------------------------
# Imports for the appended block sit here, not at the top, so this change only appends.

PARTNER_API_KEY_MAX_LIFETIME = timedelta(days=365)


class PartnerApiKey(models.Model):
    """A second credential for a partner server, presented as `X-API-Key` next to its OAuth token.

    Only the sha256 checksum of the key is stored: keys are 256-bit random, so
    a fast hash cannot be brute-forced and lookups stay one index probe
    (accounts/api_keys/). The raw key is shown once, at issue, and never again.
    `prefix` is not secret: it is how people recognise a key in lists and logs.
    """

    application = models.ForeignKey(
        "oauth2_provider.Application", on_delete=models.PROTECT, related_name="partner_api_keys"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=32, unique=True)
    key_checksum = models.CharField(max_length=64, unique=True, db_index=True, editable=False)
    scopes = models.CharField(max_length=500, help_text="space-separated OAuth scopes")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.CharField(max_length=64, help_text='staff public id, or "system"')
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=500, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [("revoke_partnerapikey", "Can revoke partner API keys")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("created_at")), name="accounts_apikey_expires_after_created"
            ),
            models.CheckConstraint(
                condition=models.Q(expires_at__lte=models.F("created_at") + PARTNER_API_KEY_MAX_LIFETIME),
                name="accounts_apikey_lifetime_max_365_days",
            ),
            models.CheckConstraint(
                condition=models.Q(revoked_at__isnull=True, revoked_reason="")
                | (models.Q(revoked_at__isnull=False) & ~models.Q(revoked_reason="")),
                name="accounts_apikey_revoked_with_reason",
            ),
            models.CheckConstraint(condition=~models.Q(scopes=""), name="accounts_apikey_scopes_not_empty"),
            models.CheckConstraint(
                condition=models.Q(key_checksum__regex=r"^[0-9a-f]{64}$"), name="accounts_apikey_checksum_sha256_hex"
            ),
        ]

    def __str__(self) -> str:
        # The prefix only: str() ends up in logs, admin history and audit reprs.
        return self.prefix


# --- Cards on file (issue 6) ----------------------------------------------------------


class PaymentCard(models.Model):
    """A customer's card on file: the vault's token and the fragments PCI DSS lets us show.

    The card number never reaches this database, not even encrypted: it lives
    in the token vault (tokenvault/, its own database and role) and this row
    carries only the token. Deleting a card crypto-shreds its vault value and
    keeps this row as a tombstone, so statements and audit entries that name
    the card keep resolving.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        DELETED = "deleted", "Deleted"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(User, on_delete=models.PROTECT, related_name="payment_cards")
    token = models.CharField(max_length=40, unique=True, editable=False)
    brand = models.CharField(max_length=16)
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    # The holder's name is PII: encrypted, bound to the card's owner like the profile's PII (ADR 0013),
    # so re-pointing the row at another customer makes it unreadable.
    holder = EncryptedTextField(bound_to=PII_BOUND_TO_OWNER, max_length=100, null=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["owner", "status"], name="accounts_card_owner_status")]
        constraints = [
            models.CheckConstraint(condition=models.Q(last4__regex=r"^[0-9]{4}$"), name="accounts_card_last4_digits"),
            models.CheckConstraint(
                condition=models.Q(exp_month__gte=1, exp_month__lte=12), name="accounts_card_exp_month_range"
            ),
            models.CheckConstraint(
                condition=models.Q(exp_year__gte=2000, exp_year__lte=2199), name="accounts_card_exp_year_range"
            ),
            models.CheckConstraint(
                condition=models.Q(status="active", deleted_at__isnull=True)
                | models.Q(status="deleted", deleted_at__isnull=False),
                name="accounts_card_deleted_iff_deleted_at",
            ),
            # Random vault tokens only: a format-preserving token looks like a card number.
            models.CheckConstraint(
                condition=models.Q(token__startswith=TOKEN_PREFIXES["card"]), name="accounts_card_token_shape"
            ),
        ]

    def __str__(self) -> str:
        # Display fragments only: str() ends up in logs, admin history and audit reprs.
        return f"{self.brand} •••• {self.last4}"


# --- Four eyes and staff invitations (issue 11): models live with their package --------------
from accounts.access_changes.models import AccessChangeAlert, AccessChangeAuthorization  # noqa: E402
from accounts.approvals.models import ApprovalDecision, ApprovalRequest, StaffInvitation  # noqa: E402
from accounts.oauth.models import (  # noqa: E402 - issue 12: OAuth rows carry a MAC
    AccessTokenMac,
    GrantMac,
    OAuthClientCertificate,
    OAuthSessionMac,
    RefreshTokenMac,
)

__all__ = [
    "AccessChangeAlert",
    "AccessChangeAuthorization",
    "AccessTokenMac",
    "ApprovalDecision",
    "ApprovalRequest",
    "CustomerProfile",
    "GrantMac",
    "OAuthClientCertificate",
    "OAuthClientPolicy",
    "OAuthSession",
    "OAuthSessionMac",
    "PartnerApiKey",
    "PaymentCard",
    "RefreshTokenMac",
    "StaffInvitation",
    "User",
]
