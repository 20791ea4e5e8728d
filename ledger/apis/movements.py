"""Money movement views: transfers and refunds, holds and captures, credit-line charges."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from fintech.free_text import FreeTextField
from fintech.idempotency import IDEMPOTENCY_PARAMETER, idempotent_response
from fintech.openapi import problems
from ledger import selectors, services
from ledger.apis.base import (
    MAX_HOLD_SECONDS,
    CustomerApi,
    CustomerObjectApi,
    HoldOut,
    MoneyField,
    MoneyInput,
    TransferOut,
    amount_minor_of,
    held_movement_out,
    hold_out,
    movement_out,
    transfer_out,
)
from ledger.models import Hold

# Every status a money-moving POST can answer besides its success (ADR 0014 lists the policy codes).
MOVEMENT_PROBLEMS = problems(
    s400="validation_error: a field is missing or malformed (errors lists them)",
    s401="not_authenticated, invalid_token, step_up_required (with an RFC 9470 WWW-Authenticate challenge)",
    s403="insufficient_scope, not_a_customer",
    s404="account_not_found: not the caller's account, or no such destination",
    s409="idempotency_key_in_progress: the same key is still running",
    s422=(
        "invalid_amount, unknown_currency, currency_mismatch, same_account, insufficient_funds, account_not_active, "
        "limit_not_configured, limit_per_transfer_exceeded, limit_daily_exceeded (with resets_at), "
        "transfer_refused_by_rule, second_factor_recently_reset (with resets_at), reference_contains_card_number, "
        "idempotency_key_required, idempotency_key_reused"
    ),
    s429="velocity_exceeded (Retry-After)",
    s503="a dependency is down; nothing was written",
)

# --- transfers ------------------------------------------------------------------------------


class TransferCreateApi(CustomerApi):
    required_scopes = ["transfers:write"]
    rate_limit_group = "money_write"  # ADR 0017

    class TransferInput(MoneyInput):
        from_account = serializers.UUIDField()
        to_account = serializers.UUIDField()

    @extend_schema(
        summary="Move money from one of the caller's accounts",
        request=TransferInput,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            201: OpenApiResponse(TransferOut, description="posted"),
            202: OpenApiResponse(TransferOut, description="accepted, not yet posted (status pending)"),
            **MOVEMENT_PROBLEMS,
        },
    )
    def post(self, request):
        values, amount_minor = self.money_request(self.TransferInput)

        def operation():
            # Accounts are found inside the service's one database call, scoped as the selectors scope them.
            movement = services.transfer_create(
                from_public_id=values["from_account"],
                to_public_id=values["to_account"],
                amount_minor=amount_minor,
                currency=values["currency"],
                reference=values["reference"],
                initiated_by=request.user,
                client_id=self.client_id(),
                actor=self.actor(),
            )
            return movement_out(movement)

        # The service writes nothing when it refuses: no savepoint needed around it.
        return idempotent_response(request, request.data, operation, savepoint=False)


class TransferDetailApi(CustomerObjectApi):
    required_scopes = ["transfers:read"]

    @extend_schema(
        summary="A transfer touching one of the caller's accounts: posted, pending or not executed",
        responses={
            200: TransferOut,
            **problems(s401="not_authenticated", s403="insufficient_scope", s404="transfer_not_found"),
        },
    )
    def get(self, request, transfer_id):
        found = selectors.transfer_get(owner=request.user, public_id=transfer_id)
        return Response(held_movement_out(found) if isinstance(found, Hold) else transfer_out(found))


class TransferReverseApi(CustomerObjectApi):
    """A refund: the payee sends back all or part of a transfer it received."""

    required_scopes = ["transfers:write"]
    rate_limit_group = "money_write"  # ADR 0017

    class RefundInput(serializers.Serializer):
        amount = MoneyField(required=False)
        reason = FreeTextField(max_length=200)  # refused with 422 if it holds a card number, before idempotency

    @extend_schema(
        summary="Refund (reverse) a transfer the caller received",
        request=RefundInput,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            201: TransferOut,
            **MOVEMENT_PROBLEMS,
            **problems(s409="transfer_already_reversed", s404="transfer_not_found"),
        },
    )
    def post(self, request, transfer_id):
        data = self.RefundInput(data=request.data)
        data.is_valid(raise_exception=True)

        def operation():
            transfer = selectors.transfer_received_get(owner=request.user, public_id=transfer_id)
            amount = data.validated_data.get("amount")
            amount_minor = amount_minor_of({"amount": amount, "currency": transfer.currency}) if amount else None
            # A full refund (no amount) sends back all that remains; step-up judges that amount.
            self.require_step_up(transfer.reversible_minor if amount_minor is None else amount_minor, transfer.currency)
            reversal = services.transfer_reverse(
                transfer=transfer,
                amount_minor=amount_minor,
                reason=data.validated_data["reason"],
                actor=self.actor(),
                initiated_by=request.user,
            )
            return 201, transfer_out(reversal)

        return idempotent_response(request, request.data, operation)


# --- holds and credit -------------------------------------------------------------------------


class HoldCreateApi(CustomerApi):
    required_scopes = ["transfers:write"]
    rate_limit_group = "money_write"  # ADR 0017

    class HoldInput(MoneyInput):
        account = serializers.UUIDField()
        destination = serializers.UUIDField()
        expires_in_seconds = serializers.IntegerField(min_value=60, max_value=MAX_HOLD_SECONDS, default=7 * 24 * 3600)

    @extend_schema(
        summary="Reserve funds for a later capture",
        request=HoldInput,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: HoldOut, **MOVEMENT_PROBLEMS},
    )
    def post(self, request):
        values, amount_minor = self.money_request(self.HoldInput)

        def operation():
            hold = services.hold_create(
                account=selectors.account_get(owner=request.user, public_id=values["account"]),
                destination=selectors.transfer_destination_get(public_id=values["destination"]),
                amount_minor=amount_minor,
                currency=values["currency"],
                reference=values["reference"],
                expires_at=timezone.now() + timedelta(seconds=values["expires_in_seconds"]),
                created_by=request.user,
                client_id=self.client_id(),
                actor=self.actor(),
            )
            return 201, hold_out(hold)

        return idempotent_response(request, request.data, operation)


class HoldCaptureApi(CustomerObjectApi):
    required_scopes = ["transfers:write"]
    rate_limit_group = "money_write"  # ADR 0017

    class CaptureInput(serializers.Serializer):
        amount = MoneyField(required=False)

    @extend_schema(
        summary="Capture all or part of a hold",
        request=CaptureInput,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            201: TransferOut,
            **MOVEMENT_PROBLEMS,
            **problems(s404="hold_not_found: not a hold to the caller's account", s409="hold_not_active, hold_expired"),
        },
    )
    def post(self, request, hold_id):
        data = self.CaptureInput(data=request.data)
        data.is_valid(raise_exception=True)

        def operation():
            hold = selectors.hold_get_as_payee(owner=request.user, public_id=hold_id)
            currency = hold.account.currency
            amount = data.validated_data.get("amount")
            amount_minor = amount_minor_of({"amount": amount, "currency": currency}) if amount else None
            # Without an amount the service captures what remains under the lock; what remained when read
            # here can only be more, so step-up judges at least the amount that moves.
            self.require_step_up(hold.remaining_minor if amount_minor is None else amount_minor, currency)
            transfer = services.hold_capture(
                hold=hold, amount_minor=amount_minor, captured_by=request.user, actor=self.actor()
            )
            return 201, transfer_out(transfer)

        return idempotent_response(request, request.data, operation)


class HoldVoidApi(CustomerObjectApi):
    required_scopes = ["transfers:write"]
    rate_limit_group = "money_write"  # ADR 0017

    @extend_schema(
        request=None,
        summary="Release what remains of a hold to the caller's account: the payee gives the payer back the money",
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            200: HoldOut,
            **problems(
                s401="not_authenticated",
                s403="insufficient_scope",
                s404="hold_not_found",
                s409="hold_not_active",
                s422="idempotency_key_required",
            ),
        },
    )
    def post(self, request, hold_id):
        def operation():
            hold = services.hold_void(
                hold=selectors.hold_get_as_payee(owner=request.user, public_id=hold_id),
                voided_by=request.user,
                actor=self.actor(),
            )
            return 200, hold_out(hold)

        return idempotent_response(request, request.data, operation)


class CreditChargeApi(CustomerApi):
    required_scopes = ["transfers:write"]
    rate_limit_group = "money_write"  # ADR 0017

    class CreditChargeInput(MoneyInput):
        account = serializers.UUIDField()

    @extend_schema(
        summary="Charge the caller's credit line",
        request=CreditChargeInput,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            201: OpenApiResponse(TransferOut, description="posted"),
            202: OpenApiResponse(TransferOut, description="accepted, not yet posted (status pending)"),
            **MOVEMENT_PROBLEMS,
        },
    )
    def post(self, request):
        values, amount_minor = self.money_request(self.CreditChargeInput)

        def operation():
            transfer = services.credit_charge(
                account=selectors.account_get(owner=request.user, public_id=values["account"]),
                amount_minor=amount_minor,
                currency=values["currency"],
                reference=values["reference"],
                initiated_by=request.user,
                client_id=self.client_id(),
                actor=self.actor(),
            )
            return movement_out(transfer)

        return idempotent_response(request, request.data, operation)
