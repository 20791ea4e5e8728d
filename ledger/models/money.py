"""The double-entry ledger: accounts, journal entries (transfers), postings, holds, limits, rules.

Fields and database constraints only; every write goes through
`ledger.services`. Amounts are integer minor units (`*_minor`, BigInteger)
and always sit next to their currency. The database backs every rule the
services check: balances never go below the credit limit, a hold never
captures more than it held, a transfer is never reversed beyond its amount.
Postings are append-only and every transfer's postings sum to zero per
currency, checked by a deferred constraint trigger at COMMIT
(migrations/0002_ledger_triggers.py).

Timestamps that order money movements come from the database clock
(`clock_timestamp()`, read at INSERT, i.e. after the account locks are taken),
not from the transaction start (`now()`): a transaction that started earlier
but waited for a lock must not appear to have posted earlier, or an
"as of" balance would be computed from postings in the wrong order.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from ledger.models.base import CLIENT_ID_MAX_LENGTH, REFERENCE_MAX_LENGTH, ClockTimestamp
from ledger.models.base import currency_known as _currency_known


class LedgerAccount(models.Model):
    """Where money sits: a customer's deposit or credit-line account, or a platform account.

    Available = posted - held. A customer account may go down to
    -credit_limit_minor and no further (credit lines only have a limit).
    `version` grows by one on every balance change (posted or held), so the
    ledger can tell a change made without the row lock from one made with it.
    Platform accounts (funding, fees, settlement) have no owner and no floor:
    the funding account goes negative by what the platform has paid in.
    """

    class Kind(models.TextChoices):
        DEPOSIT = "deposit", "Deposit"
        CREDIT_LINE = "credit_line", "Credit line"
        PLATFORM = "platform", "Platform"

    class Purpose(models.TextChoices):
        NONE = "", "None"
        FUNDING = "funding", "Funding"
        FEES = "fees", "Fees"
        SETTLEMENT = "settlement", "Settlement"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        BLOCKED = "blocked", "Blocked"
        CLOSED = "closed", "Closed"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_accounts"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    purpose = models.CharField(max_length=16, choices=Purpose.choices, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    currency = models.CharField(max_length=3)
    credit_limit_minor = models.BigIntegerField(default=0)
    posted_minor = models.BigIntegerField(default=0)
    held_minor = models.BigIntegerField(default=0)
    version = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(db_default=ClockTimestamp())

    class Meta:
        indexes = [models.Index(fields=["owner", "currency"], name="ledger_account_owner_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["deposit", "credit_line", "platform"]), name="ledger_account_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["active", "blocked", "closed"]), name="ledger_account_status_valid"
            ),
            _currency_known("ledger_account"),
            # A platform account has a purpose and no owner; a customer account the opposite.
            models.CheckConstraint(
                condition=(
                    Q(kind="platform", owner__isnull=True, purpose__in=["funding", "fees", "settlement"])
                    | (~Q(kind="platform") & Q(owner__isnull=False, purpose=""))
                ),
                name="ledger_account_platform_has_purpose_no_owner",
            ),
            models.CheckConstraint(condition=Q(credit_limit_minor__gte=0), name="ledger_account_credit_limit_gte_0"),
            models.CheckConstraint(
                condition=Q(kind="credit_line") | Q(credit_limit_minor=0),
                name="ledger_account_credit_limit_only_credit_lines",
            ),
            models.CheckConstraint(condition=Q(held_minor__gte=0), name="ledger_account_held_gte_0"),
            models.CheckConstraint(condition=Q(version__gte=0), name="ledger_account_version_gte_0"),
            # The floor: what the service checks as "insufficient funds", the database refuses too.
            models.CheckConstraint(
                condition=Q(kind="platform") | Q(posted_minor__gte=F("held_minor") - F("credit_limit_minor")),
                name="ledger_account_available_within_limit",
            ),
            models.UniqueConstraint(
                fields=["purpose", "currency"], condition=Q(kind="platform"), name="ledger_platform_account_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"ledger account {self.public_id}"

    @property
    def available_minor(self) -> int:
        return self.posted_minor - self.held_minor

    @property
    def is_platform(self) -> bool:
        return self.kind == self.Kind.PLATFORM


class Transfer(models.Model):
    """A journal entry: one movement of money, made of postings that sum to zero.

    Never updated, except `reversed_minor`, which grows under the account locks
    when a reversal is posted (a trigger refuses any other change, and DELETE).
    """

    class Kind(models.TextChoices):
        TRANSFER = "transfer", "Transfer"
        DEPOSIT = "deposit", "Deposit"
        HOLD_CAPTURE = "hold_capture", "Hold capture"
        REVERSAL = "reversal", "Reversal"
        CREDIT_CHARGE = "credit_charge", "Credit charge"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    currency = models.CharField(max_length=3)
    amount_minor = models.BigIntegerField()
    reference = models.CharField(max_length=REFERENCE_MAX_LENGTH, blank=True)
    initiated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_transfers"
    )
    client_id = models.CharField(max_length=CLIENT_ID_MAX_LENGTH, blank=True, help_text="OAuth client id")
    # Indexed only where set (Meta.indexes): most transfers are neither reversals nor captures.
    reverses = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversals", db_index=False
    )
    reversed_minor = models.BigIntegerField(default=0)
    hold = models.ForeignKey(
        "Hold", null=True, blank=True, on_delete=models.PROTECT, related_name="captures", db_index=False
    )
    flagged_for_review = models.BooleanField(default=False)
    review_reasons = models.JSONField(default=list, blank=True)
    # The business day (LEDGER_LIMIT_TIME_ZONE) whose spend counter this movement counted on; NULL when it
    # did not count (deposits, captures: the hold counted when it reserved the money).
    limit_day = models.DateField(null=True, blank=True)
    # HMAC-SHA256 (hex) by the application that decided the movement (ledger/authorization.py): a movement
    # posted with the database login alone has none that `ledger_verify` accepts. Empty only before 0011.
    authorization_mac = models.CharField(max_length=64, blank=True, db_default="", editable=False)
    created_at = models.DateTimeField(db_default=ClockTimestamp())

    class Meta:
        indexes = [
            models.Index(fields=["kind", "created_at"], name="ledger_transfer_kind_idx"),
            models.Index(fields=["reverses"], name="ledger_transfer_reverses_idx", condition=Q(reverses__isnull=False)),
            models.Index(fields=["hold"], name="ledger_transfer_hold_idx", condition=Q(hold__isnull=False)),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["transfer", "deposit", "hold_capture", "reversal", "credit_charge"]),
                name="ledger_transfer_kind_valid",
            ),
            _currency_known("ledger_transfer"),
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="ledger_transfer_amount_gt_0"),
            models.CheckConstraint(condition=Q(reversed_minor__gte=0), name="ledger_transfer_reversed_gte_0"),
            models.CheckConstraint(
                condition=Q(reversed_minor__lte=F("amount_minor")), name="ledger_transfer_reversed_lte_amount"
            ),
            # A reversal points at what it reverses and is itself never reversed.
            models.CheckConstraint(
                condition=(Q(kind="reversal", reverses__isnull=False, reversed_minor=0))
                | (~Q(kind="reversal") & Q(reverses__isnull=True)),
                name="ledger_transfer_reversal_linked",
            ),
            # A capture always names its hold; a transfer or credit charge names one only when it was held for
            # review and then approved (the review hold it captured); nothing else has a hold.
            models.CheckConstraint(
                condition=Q(kind="hold_capture", hold__isnull=False)
                | Q(kind__in=["transfer", "credit_charge"])
                | (~Q(kind__in=["hold_capture", "transfer", "credit_charge"]) & Q(hold__isnull=True)),
                name="ledger_transfer_capture_has_hold",
            ),
            models.CheckConstraint(
                condition=Q(flagged_for_review=False, review_reasons=[])
                | (Q(flagged_for_review=True) & ~Q(review_reasons=[])),
                name="ledger_transfer_flag_has_reasons",
            ),
        ]

    def __str__(self) -> str:
        return f"transfer {self.public_id}"

    @property
    def reversible_minor(self) -> int:
        return self.amount_minor - self.reversed_minor


# What a customer may refund: a payment another customer made them. Deposits and credit charges are the
# platform's own movements; a reversal is never reversed.
CUSTOMER_REFUNDABLE_KINDS = (Transfer.Kind.TRANSFER, Transfer.Kind.HOLD_CAPTURE)


class Posting(models.Model):
    """One line of a journal entry: a signed amount on one account, and that account's balance after it.

    Append-only: triggers refuse UPDATE, DELETE and TRUNCATE even for the
    table owner (unless they disable the triggers), and the runtime role holds
    only INSERT and SELECT (`write_once_models`). `account_version` is the
    account's version right after this posting, so postings of one account are
    totally ordered and `balance_after_minor` chains from one to the next.
    """

    transfer = models.ForeignKey(Transfer, on_delete=models.PROTECT, related_name="postings")
    # No index of its own: (account, created_at) and the (account, account_version) unique index lead with it.
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="postings", db_index=False)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    balance_after_minor = models.BigIntegerField()
    account_version = models.BigIntegerField()
    created_at = models.DateTimeField(db_default=ClockTimestamp())

    class Meta:
        indexes = [models.Index(fields=["account", "created_at"], name="ledger_posting_acct_time_idx")]
        constraints = [
            models.CheckConstraint(condition=~Q(amount_minor=0), name="ledger_posting_amount_not_0"),
            _currency_known("ledger_posting"),
            models.CheckConstraint(condition=Q(account_version__gt=0), name="ledger_posting_version_gt_0"),
            models.UniqueConstraint(fields=["account", "account_version"], name="ledger_posting_account_version_uniq"),
        ]

    def __str__(self) -> str:
        return f"posting {self.pk} of transfer {self.transfer_id}"


class Hold(models.Model):
    """Money reserved on `account` for a later capture to `destination` (a card authorisation, say).

    While active, the remaining amount (amount - captured) counts in the
    account's `held_minor`. Captures may be partial and repeated; a void or
    expiry releases whatever remains.

    Purpose `review`: a transfer or credit charge a rule held for review
    (ADR 0014). It never expires, the customer can neither capture nor void
    it; a compliance officer's approval posts the movement in full (kind
    `movement_kind`, public id `transfer_public_id`, promised to the customer
    in the 202), a rejection releases it.
    """

    class Purpose(models.TextChoices):
        AUTHORISATION = "authorisation", "Authorisation"
        REVIEW = "review", "Held for review"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        CAPTURED = "captured", "Captured"
        VOIDED = "voided", "Voided"
        EXPIRED = "expired", "Expired"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="holds")
    destination = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="incoming_holds")
    currency = models.CharField(max_length=3)
    amount_minor = models.BigIntegerField()
    captured_minor = models.BigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    purpose = models.CharField(max_length=16, choices=Purpose.choices, default=Purpose.AUTHORISATION)
    expires_at = models.DateTimeField(null=True, blank=True)
    reference = models.CharField(max_length=REFERENCE_MAX_LENGTH, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_holds"
    )
    client_id = models.CharField(max_length=CLIENT_ID_MAX_LENGTH, blank=True, help_text="OAuth client id")
    # The business day whose spend counter this hold's amount was reserved on (released there on void/expiry).
    limit_day = models.DateField(null=True, blank=True)
    # Review holds only: what their approval posts, under which public id.
    movement_kind = models.CharField(max_length=16, blank=True)
    transfer_public_id = models.UUIDField(null=True, blank=True, unique=True)
    # HMAC-SHA256 (hex) by the application that opened the hold (ledger/authorization.py): checked before
    # any capture, and by `ledger_verify`. Empty only before ledger 0011.
    authorization_mac = models.CharField(max_length=64, blank=True, db_default="", editable=False)
    # Money leaves it only with its review case approved (a review hold, or a `hold_for_review` rule's hit):
    # set by the database's function, covered by the MAC, so deleting or re-kinding the case releases nothing.
    review_required = models.BooleanField(db_default=False, editable=False)
    created_at = models.DateTimeField(db_default=ClockTimestamp())

    class Meta:
        indexes = [
            models.Index(fields=["expires_at", "id"], condition=Q(status="active"), name="ledger_hold_expiry_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["active", "captured", "voided", "expired"]), name="ledger_hold_status_valid"
            ),
            _currency_known("ledger_hold"),
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="ledger_hold_amount_gt_0"),
            models.CheckConstraint(condition=Q(captured_minor__gte=0), name="ledger_hold_captured_gte_0"),
            models.CheckConstraint(
                condition=Q(captured_minor__lte=F("amount_minor")), name="ledger_hold_captured_lte_amount"
            ),
            models.CheckConstraint(
                condition=~Q(status="captured") | Q(captured_minor=F("amount_minor")),
                name="ledger_hold_captured_in_full",
            ),
            models.CheckConstraint(condition=~Q(account=F("destination")), name="ledger_hold_not_to_itself"),
            # An authorisation expires; a review hold never does and knows what its approval posts.
            models.CheckConstraint(
                condition=Q(
                    purpose="authorisation", expires_at__isnull=False, movement_kind="", transfer_public_id__isnull=True
                )
                | Q(
                    purpose="review",
                    expires_at__isnull=True,
                    movement_kind__in=["transfer", "credit_charge"],
                    transfer_public_id__isnull=False,
                ),
                name="ledger_hold_purpose_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"hold {self.public_id}"

    @property
    def remaining_minor(self) -> int:
        return self.amount_minor - self.captured_minor
