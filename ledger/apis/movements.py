"""Money movement views: transfers and refunds, holds and captures, credit-line charges."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from fintech.idempotency import IDEMPOTENCY_PARAMETER, idempotent_response
from ledger import selectors, services
from ledger.apis.base import (
    MAX_HOLD_SECONDS,
    CustomerApi,
    CustomerObjectApi,
    MoneyField,
    MoneyInput,
    amount_minor_of,
    hold_out,
    transfer_out,
)

# --- transfers ------------------------------------------------------------------------------


class TransferCreateApi(CustomerApi):
    required_scopes = ["transfers:write"]

    class TransferInput(MoneyInput):
        from_account = serializers.UUIDField()
        to_account = serializers.UUIDField()

    @extend_schema(
        summary="Move money from one of the caller's accounts",
        request=TransferInput,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: OpenApiTypes.OBJECT},
    )
    def post(self, request):
        values, amount_minor = self.money_request(self.TransferInput)

        def operation():
            # Accounts are found inside the service's one database call, scoped as the selectors scope them.
            transfer = services.transfer_create_by_public_ids(
                from_public_id=values["from_account"],
                to_public_id=values["to_account"],
                amount_minor=amount_minor,
                currency=values["currency"],
                reference=values["reference"],
                initiated_by=request.user,
                client_id=self.client_id(),
                actor=self.actor(),
            )
            return 201, transfer_out(transfer)

        # The service writes nothing when it refuses: no savepoint needed around it.
        return idempotent_response(request, request.data, operation, savepoint=False)


class TransferDetailApi(CustomerObjectApi):
    required_scopes = ["transfers:read"]

    @extend_schema(summary="A transfer touching one of the caller's accounts", responses={200: OpenApiTypes.OBJECT})
    def get(self, request, transfer_id):
        return Response(transfer_out(selectors.transfer_get(owner=request.user, public_id=transfer_id)))


class TransferReverseApi(CustomerObjectApi):
    """A refund: the payee sends back all or part of a transfer it received."""

    required_scopes = ["transfers:write"]

    class RefundInput(serializers.Serializer):
        amount = MoneyField(required=False)
        reason = serializers.CharField(max_length=200)

    @extend_schema(
        summary="Refund (reverse) a transfer the caller received",
        request=RefundInput,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: OpenApiTypes.OBJECT},
    )
    def post(self, request, transfer_id):
        data = self.RefundInput(data=request.data)
        data.is_valid(raise_exception=True)

        def operation():
            transfer = selectors.transfer_received_get(owner=request.user, public_id=transfer_id)
            amount = data.validated_data.get("amount")
            amount_minor = amount_minor_of({"amount": amount, "currency": transfer.currency}) if amount else None
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

    class HoldInput(MoneyInput):
        account = serializers.UUIDField()
        destination = serializers.UUIDField()
        expires_in_seconds = serializers.IntegerField(min_value=60, max_value=MAX_HOLD_SECONDS, default=7 * 24 * 3600)

    @extend_schema(
        summary="Reserve funds for a later capture",
        request=HoldInput,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: OpenApiTypes.OBJECT},
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
                actor=self.actor(),
            )
            return 201, hold_out(hold)

        return idempotent_response(request, request.data, operation)


class HoldCaptureApi(CustomerObjectApi):
    required_scopes = ["transfers:write"]

    class CaptureInput(serializers.Serializer):
        amount = MoneyField(required=False)

    @extend_schema(
        summary="Capture all or part of a hold",
        request=CaptureInput,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: OpenApiTypes.OBJECT},
    )
    def post(self, request, hold_id):
        data = self.CaptureInput(data=request.data)
        data.is_valid(raise_exception=True)

        def operation():
            hold = selectors.hold_get(owner=request.user, public_id=hold_id)
            currency = hold.account.currency
            amount = data.validated_data.get("amount")
            amount_minor = (
                amount_minor_of({"amount": amount, "currency": currency})
                if amount
                else hold.amount_minor - hold.captured_minor
            )
            transfer = services.hold_capture(hold=hold, amount_minor=amount_minor, actor=self.actor())
            return 201, transfer_out(transfer)

        return idempotent_response(request, request.data, operation)


class HoldVoidApi(CustomerObjectApi):
    required_scopes = ["transfers:write"]

    @extend_schema(
        request=None,
        summary="Release what remains of a hold",
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={200: OpenApiTypes.OBJECT},
    )
    def post(self, request, hold_id):
        def operation():
            hold = services.hold_void(
                hold=selectors.hold_get(owner=request.user, public_id=hold_id), actor=self.actor()
            )
            return 200, hold_out(hold)

        return idempotent_response(request, request.data, operation)


class CreditChargeApi(CustomerApi):
    required_scopes = ["transfers:write"]

    class CreditChargeInput(MoneyInput):
        account = serializers.UUIDField()

    @extend_schema(
        summary="Charge the caller's credit line",
        request=CreditChargeInput,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: OpenApiTypes.OBJECT},
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
            return 201, transfer_out(transfer)

        return idempotent_response(request, request.data, operation)
