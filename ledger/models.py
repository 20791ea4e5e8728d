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

from ledger.currencies import CURRENCY_CODES

REFERENCE_MAX_LENGTH = 140
CLIENT_ID_MAX_LENGTH = 100
RULE_WINDOW_MAX_MINUTES = 24 * 60
CUSTOMER_TIERS = ("standard", "premium", "business")  # accounts.CustomerProfile.Tier


class ClockTimestamp(models.Func):
    """`clock_timestamp()`: the wall clock at the moment the row is written, not at transaction start."""

    function = "clock_timestamp"
    output_field = models.DateTimeField()


def _currency_known(prefix: str) -> models.CheckConstraint:
    return models.CheckConstraint(condition=Q(currency__in=CURRENCY_CODES), name=f"{prefix}_currency_known")


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
            models.CheckConstraint(
                condition=Q(kind="hold_capture", hold__isnull=False) | (~Q(kind="hold_capture") & Q(hold__isnull=True)),
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
    """

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
    expires_at = models.DateTimeField()
    reference = models.CharField(max_length=REFERENCE_MAX_LENGTH, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_holds"
    )
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
        ]

    def __str__(self) -> str:
        return f"hold {self.public_id}"

    @property
    def remaining_minor(self) -> int:
        return self.amount_minor - self.captured_minor


class TransferLimit(models.Model):
    """How much a customer of a tier may send in one currency: per transfer and per UTC day.

    A tier and currency without a row cannot send at all (fail closed).
    """

    tier = models.CharField(max_length=16)
    currency = models.CharField(max_length=3)
    per_transfer_max_minor = models.BigIntegerField()
    daily_outgoing_max_minor = models.BigIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tier", "currency"], name="ledger_limit_tier_currency_uniq"),
            models.CheckConstraint(condition=Q(tier__in=CUSTOMER_TIERS), name="ledger_limit_tier_valid"),
            _currency_known("ledger_limit"),
            models.CheckConstraint(condition=Q(per_transfer_max_minor__gt=0), name="ledger_limit_per_transfer_gt_0"),
            models.CheckConstraint(
                condition=Q(daily_outgoing_max_minor__gte=F("per_transfer_max_minor")),
                name="ledger_limit_daily_gte_per_transfer",
            ),
        ]

    def __str__(self) -> str:
        return f"limit {self.tier} {self.currency}"


class TransferRule(models.Model):
    """A risk rule as data, evaluated for every customer transfer.

    review_threshold: an amount at or above `threshold_minor` (in `currency`)
    hits. velocity: more than `max_count` outgoing transfers by the same owner
    within `window_minutes` (in `currency`, or any if blank) hits. On a hit,
    `flag` marks the transfer for review; `refuse` refuses it. Blocked
    accounts need no rule: account status refuses them.
    """

    class Kind(models.TextChoices):
        REVIEW_THRESHOLD = "review_threshold", "Review threshold"
        VELOCITY = "velocity", "Velocity"

    class Action(models.TextChoices):
        FLAG = "flag", "Flag for review"
        REFUSE = "refuse", "Refuse"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    currency = models.CharField(max_length=3, blank=True, help_text="blank: any currency")
    threshold_minor = models.BigIntegerField(null=True, blank=True)
    max_count = models.PositiveIntegerField(null=True, blank=True)
    window_minutes = models.PositiveIntegerField(null=True, blank=True)
    action = models.CharField(max_length=16, choices=Action.choices)
    active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["review_threshold", "velocity"]), name="ledger_rule_kind_valid"
            ),
            models.CheckConstraint(condition=Q(action__in=["flag", "refuse"]), name="ledger_rule_action_valid"),
            models.CheckConstraint(
                condition=Q(currency="") | Q(currency__in=CURRENCY_CODES), name="ledger_rule_currency_known"
            ),
            # A threshold means nothing without its currency (1000 is 10.00 EUR but 1000 JPY).
            models.CheckConstraint(
                condition=~Q(kind="review_threshold") | (Q(threshold_minor__gt=0) & ~Q(currency="")),
                name="ledger_rule_threshold_complete",
            ),
            models.CheckConstraint(
                condition=~Q(kind="velocity")
                | Q(max_count__gt=0, window_minutes__gt=0, window_minutes__lte=RULE_WINDOW_MAX_MINUTES),
                name="ledger_rule_velocity_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"rule {self.name}"


# --- Outbox: notifications that commit with the money movement ------------------------

OUTBOX_TOPIC_MAX_LENGTH = 64
OUTBOX_LAST_ERROR_MAX_LENGTH = 500
# After this many failed attempts a message is `failed` (and audited), never retried on its own.
OUTBOX_MAX_ATTEMPTS = 10


class OutboxMessage(models.Model):
    """A notification owed to someone, written in the transaction of the change it announces.

    Rows are INSERTed next to the postings (`ledger.notifications`), so "money
    moved" and "tell them" commit together or not at all; a relay
    (`ledger.outbox.delivery`) then sends each committed row once, under its
    row lock, and marks it delivered in the same transaction.

    No personal data here: an email row points at the user and the address is
    read at delivery time; the payload holds ids, amounts as strings, currency
    and kind. `public_id` is the delivery id partners see (`X-Fintech-Delivery`)
    and deduplicate on; the integer id never leaves the platform.
    """

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    topic = models.CharField(max_length=OUTBOX_TOPIC_MAX_LENGTH)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    recipient_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="outbox_messages"
    )
    recipient_client_id = models.CharField(max_length=CLIENT_ID_MAX_LENGTH, blank=True, help_text="OAuth client id")
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_default=ClockTimestamp())
    last_error = models.CharField(max_length=OUTBOX_LAST_ERROR_MAX_LENGTH, blank=True)
    created_at = models.DateTimeField(db_default=ClockTimestamp())
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="ledger_outbox_due_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(channel__in=["email", "webhook"]), name="ledger_outbox_channel_valid"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "delivered", "failed"]), name="ledger_outbox_status_valid"
            ),
            # An email goes to a user, a webhook to an OAuth client; never both, never neither.
            models.CheckConstraint(
                condition=Q(channel="email", recipient_user__isnull=False, recipient_client_id="")
                | (Q(channel="webhook", recipient_user__isnull=True) & ~Q(recipient_client_id="")),
                name="ledger_outbox_recipient_matches_channel",
            ),
            models.CheckConstraint(
                condition=Q(attempts__lte=OUTBOX_MAX_ATTEMPTS), name="ledger_outbox_attempts_bounded"
            ),
            models.CheckConstraint(
                condition=Q(status="delivered", delivered_at__isnull=False)
                | (~Q(status="delivered") & Q(delivered_at__isnull=True)),
                name="ledger_outbox_delivered_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"outbox message {self.public_id}"
