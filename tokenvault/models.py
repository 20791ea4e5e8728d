"""The vault's one table, in the `vault` database (see fintech/db_router.py).

No column holds a value in clear: `ciphertext` is an envelope (tokenvault/crypto.py),
`blind_index` an HMAC under a key the database never sees. Cards keep display
fragments PCI DSS allows next to a token (last four digits, brand, expiry).
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now


class VaultRecord(models.Model):
    class TokenType(models.TextChoices):
        CARD = "card", "Card number"
        NATIONAL_ID = "national_id", "National id"

    id = models.BigAutoField(primary_key=True)
    token = models.CharField(max_length=40, unique=True)
    token_type = models.CharField(max_length=16, choices=TokenType.choices)
    ciphertext = models.BinaryField(max_length=512, help_text="envelope; empty once shredded")
    kek_id = models.CharField(max_length=64, blank=True)
    kek_version = models.PositiveIntegerField(null=True, db_index=True, help_text="null once shredded")
    # NULL, not "": shredded and unindexed rows must stay out of the partial unique index.
    blind_index = models.CharField(max_length=64, null=True, blank=True, db_index=True)  # noqa: DJ001
    index_key_version = models.PositiveIntegerField(null=True, blank=True)
    convergent = models.BooleanField(default=False, help_text="the same value always maps to this token")
    format_preserving = models.BooleanField(default=False)
    last4 = models.CharField(max_length=4, blank=True)
    brand = models.CharField(max_length=16, blank=True)
    exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())
    # When a caller last received this token: creation, or a convergent tokenize that found the value
    # already vaulted. The orphan reaper shreds only records not issued since its cutoff (ADR 0012).
    last_issued_at = models.DateTimeField(db_default=Now())
    shredded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # Nobody adds, changes or browses vault records through Django; staff may only read values
        # in clear, per token type, through the vault (tokenvault/admin.py, ADR 0012).
        default_permissions = ()
        permissions = [
            ("detokenize_card", "Can read card numbers in clear"),
            ("detokenize_national_id", "Can read national ids in clear"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(token_type__in=["card", "national_id"]), name="vault_record_token_type_valid"
            ),
            # Convergent tokenization is race-safe because of this index: two
            # writers of the same value cannot both insert.
            models.UniqueConstraint(
                fields=["token_type", "blind_index"],
                condition=models.Q(convergent=True),
                name="vault_record_convergent_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(shredded_at__isnull=True, kek_version__isnull=False)
                & ~models.Q(ciphertext=b"")
                & ~models.Q(kek_id="")
                | models.Q(
                    shredded_at__isnull=False,
                    ciphertext=b"",
                    kek_version__isnull=True,
                    blind_index__isnull=True,
                    last4="",
                    brand="",
                    exp_month__isnull=True,
                    exp_year__isnull=True,
                ),
                name="vault_record_live_or_shredded",
            ),
            models.CheckConstraint(
                condition=models.Q(token_type__in=["card"])
                | models.Q(last4="", brand="", exp_month__isnull=True, exp_year__isnull=True, format_preserving=False),
                name="vault_record_fragments_cards_only",
            ),
            models.CheckConstraint(
                condition=models.Q(exp_month__isnull=True) | models.Q(exp_month__gte=1, exp_month__lte=12),
                name="vault_record_exp_month_range",
            ),
            models.CheckConstraint(
                condition=models.Q(exp_year__isnull=True) | models.Q(exp_year__gte=2000, exp_year__lte=2199),
                name="vault_record_exp_year_range",
            ),
            models.CheckConstraint(
                condition=models.Q(last4="") | models.Q(last4__regex=r"^[0-9]{4}$"), name="vault_record_last4_digits"
            ),
            models.CheckConstraint(
                condition=~models.Q(convergent=True, blind_index=None, shredded_at=None),
                name="vault_record_convergent_indexed",
            ),
        ]

    def __str__(self) -> str:
        return self.token


class UsedStaffGrant(models.Model):
    """A staff grant a vault-role command has acted on (fintech/staff_grants.py): each grant acts once.

    Kept in the vault database, which the vault role writes and the API role
    never reads: the API role signs grants, the vault decides whether one was used.
    """

    grant_id = models.UUIDField(unique=True)
    command = models.CharField(max_length=64)
    operator = models.CharField(max_length=64, help_text="staff public id named by the grant")
    approved_by = models.CharField(max_length=64, blank=True, help_text="second person, for a four-eyes grant")
    used_at = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return f"staff grant {self.grant_id}"
