"""Shared pieces of the ledger API: base views, amount parsing, output shapes."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.views import APIView

from accounts.permissions import HasRequiredScopes, IsCustomer
from accounts.step_up import require_recent_mfa
from audit.services.events import Actor
from fintech.free_text import FreeTextField
from ledger.currencies import format_amount, parse_amount
from ledger.models import Hold, LedgerAccount, Posting, Transfer
from ledger.services import PendingMovement

MAX_HOLD_SECONDS = 30 * 24 * 3600


class CustomerApi(APIView):
    """Acts for the customer behind the token; a client-only token is refused (403)."""

    permission_classes = [HasRequiredScopes, IsCustomer]

    def actor(self) -> Actor:
        return Actor.from_request(self.request)

    def money_request(self, serializer_class) -> tuple[dict, int]:
        """Validated input (currency upper-cased), its exact amount, and step-up enforced for large ones."""
        data = serializer_class(data=self.request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        amount_minor = amount_minor_of(values)
        self.require_step_up(amount_minor, values["currency"])
        return values, amount_minor

    def require_step_up(self, amount_minor: int, currency: str) -> None:
        """RFC 9470 step-up for every money-moving call: a 401 challenge when the amount is large for its currency.

        Calls whose currency is known only from a fetched object (a refund, a
        capture) run this inside their idempotent operation; `idempotent_response`
        does not store a 401, so the client can step up and retry with the same key.
        """
        require_recent_mfa(access_token=self.request.auth, amount_minor=amount_minor, currency=currency)

    def client_id(self) -> str:
        application = getattr(self.request.auth, "application", None)
        return application.client_id if application else ""


class MoneyField(serializers.CharField):
    """An amount as a decimal string; parsed with the currency of the same payload.

    A JSON number is refused (400), not converted: it reaches Python as a float,
    and `12345678901234567.89` would arrive as another amount (found in review:
    DRF's CharField turned `0.01` into "0.01" and accepted it).
    """

    default_error_messages = {"not_a_string": 'Write the amount as a decimal string, like "12.34".'}

    def __init__(self, **kwargs):
        super().__init__(max_length=32, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class MoneyInput(serializers.Serializer):
    """The part every money-moving request shares: an amount, its currency, a reference."""

    amount = MoneyField()
    currency = serializers.CharField(min_length=3, max_length=3)
    # A card number here is refused (422) before the idempotency record is claimed: nothing is stored.
    reference = FreeTextField(max_length=140, allow_blank=True, default="")

    def validate_currency(self, value: str) -> str:
        return value.upper()


class CustomerObjectApi(CustomerApi):
    """Acts on one object: for anyone but its owner (a client-only token included) it does not exist (404)."""

    permission_classes = [HasRequiredScopes]


def amount_minor_of(data: dict, field: str = "amount") -> int:
    """Exact minor units, or `invalid_amount` (422) before anything runs."""
    return parse_amount(data[field], data["currency"])


# --- output shapes ------------------------------------------------------------------------


def account_out(account: LedgerAccount) -> dict:
    available = account.posted_minor - account.held_minor
    return {
        "id": str(account.public_id),
        "kind": account.kind,
        "status": account.status,
        "currency": account.currency,
        "posted": format_amount(account.posted_minor, account.currency),
        "held": format_amount(account.held_minor, account.currency),
        "available": format_amount(available, account.currency),
        "credit_limit": format_amount(account.credit_limit_minor, account.currency),
        "available_to_spend": format_amount(available + account.credit_limit_minor, account.currency),
        "version": account.version,
        "created_at": account.created_at.isoformat(),
    }


class TransferOut(serializers.Serializer):
    """A movement as its customer sees it: posted, pending or not executed. Never whether it was reviewed."""

    id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=Transfer.Kind.choices)
    status = serializers.ChoiceField(choices=["posted", "pending", "not_executed"])
    amount = serializers.CharField(help_text="exact decimal string in the currency's minor unit")
    currency = serializers.CharField()
    from_account = serializers.UUIDField()
    to_account = serializers.UUIDField()
    reference = serializers.CharField(allow_blank=True)
    reversed_amount = serializers.CharField()
    reverses = serializers.UUIDField(allow_null=True)
    created_at = serializers.DateTimeField()


class HoldOut(serializers.Serializer):
    id = serializers.UUIDField()
    account = serializers.UUIDField()
    destination = serializers.UUIDField()
    amount = serializers.CharField()
    captured = serializers.CharField()
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=Hold.Status.choices)
    expires_at = serializers.DateTimeField(allow_null=True)
    reference = serializers.CharField(allow_blank=True)


def transfer_out(transfer: Transfer) -> dict:
    # A transfer just posted carries its postings (`posting_list`); only a read needs the query.
    postings = getattr(transfer, "posting_list", None) or transfer.postings.select_related("account")
    legs = {p.amount_minor < 0: p.account.public_id for p in postings}
    return {
        "id": str(transfer.public_id),
        "kind": transfer.kind,
        "status": "posted",
        "amount": format_amount(transfer.amount_minor, transfer.currency),
        "currency": transfer.currency,
        "from_account": str(legs.get(True, "")),
        "to_account": str(legs.get(False, "")),
        "reference": transfer.reference,
        "reversed_amount": format_amount(transfer.reversed_minor, transfer.currency),
        "reverses": str(transfer.reverses.public_id) if transfer.reverses_id else None,
        "created_at": transfer.created_at.isoformat(),
    }


def movement_out(movement) -> tuple[int, dict]:
    """(status, body) for what a money-moving service returned: 201 posted, or 202 pending."""
    if isinstance(movement, PendingMovement):
        return 202, pending_out(
            public_id=movement.public_id,
            kind=movement.kind,
            status="pending",
            amount_minor=movement.amount_minor,
            currency=movement.currency,
            accounts=(movement.from_account, movement.to_account),
            reference=movement.reference,
            created_at=movement.created_at,
        )
    return 201, transfer_out(movement)


def held_movement_out(hold: Hold) -> dict:
    """A movement still held (pending) or released without posting (not executed), from its review hold."""
    return pending_out(
        public_id=hold.transfer_public_id,
        kind=hold.movement_kind,
        status="pending" if hold.status == Hold.Status.ACTIVE else "not_executed",
        amount_minor=hold.amount_minor,
        currency=hold.currency,
        accounts=(hold.account.public_id, hold.destination.public_id),
        reference=hold.reference,
        created_at=hold.created_at,
    )


def pending_out(*, public_id, kind, status, amount_minor, currency, accounts, reference, created_at) -> dict:
    return {
        "id": str(public_id),
        "kind": kind,
        "status": status,
        "amount": format_amount(amount_minor, currency),
        "currency": currency,
        "from_account": str(accounts[0]),
        "to_account": str(accounts[1]),
        "reference": reference,
        "reversed_amount": format_amount(0, currency),
        "reverses": None,
        "created_at": created_at.isoformat(),
    }


def hold_out(hold: Hold) -> dict:
    return {
        "id": str(hold.public_id),
        "account": str(hold.account.public_id),
        "destination": str(hold.destination.public_id),
        "amount": format_amount(hold.amount_minor, hold.account.currency),
        "captured": format_amount(hold.captured_minor, hold.account.currency),
        "currency": hold.account.currency,
        "status": hold.status,
        "expires_at": hold.expires_at.isoformat() if hold.expires_at else None,
        "reference": hold.reference,
    }


def posting_out(posting: Posting) -> dict:
    return {
        "transfer": str(posting.transfer.public_id),
        "kind": posting.transfer.kind,
        "amount": format_amount(posting.amount_minor, posting.currency),
        "currency": posting.currency,
        "balance_after": format_amount(posting.balance_after_minor, posting.currency),
        "reference": posting.transfer.reference,
        "created_at": posting.created_at.isoformat(),
    }
