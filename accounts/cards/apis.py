"""`/v1/cards`: save, list and delete the caller's cards on file.

The number is validated, sent to the vault and forgotten: it is never echoed
(responses carry the token and fragments), never logged (the access log and
the api.call audit row record field names only) and never stored here.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.cards import selectors, services
from accounts.models import PaymentCard
from accounts.permissions import HasRequiredScopes, IsCustomer
from audit.services.events import Actor
from fintech.idempotency import IDEMPOTENCY_PARAMETER, idempotent_response


@extend_schema_serializer(component_name="Card")
class CardOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    token = serializers.CharField(help_text="vault token standing for the number; carries no information about it")
    brand = serializers.CharField()
    last4 = serializers.CharField()
    exp_month = serializers.IntegerField()
    exp_year = serializers.IntegerField()
    created_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="CardList")
class CardListOutput(serializers.Serializer):
    results = CardOutput(many=True)


@extend_schema_serializer(component_name="CardSave")
class CardInput(serializers.Serializer):
    # Validation messages of these fields never quote the input.
    number = serializers.CharField(max_length=32, trim_whitespace=True, help_text="digits, spaces or dashes allowed")
    exp_month = serializers.IntegerField(min_value=1, max_value=12)
    exp_year = serializers.IntegerField(min_value=2000, max_value=2199)
    holder = serializers.CharField(max_length=100, trim_whitespace=True)


def card_out(card: PaymentCard) -> dict:
    return CardOutput(card).data


class CardListCreateApi(APIView):
    permission_classes = [HasRequiredScopes, IsCustomer]
    required_scopes = {"GET": ["cards:read"], "POST": ["cards:write"]}

    @extend_schema(operation_id="cards_list", summary="The caller's cards on file", responses=CardListOutput)
    def get(self, request):
        return Response({"results": [card_out(card) for card in selectors.payment_cards_list(owner=request.user)]})

    @extend_schema(
        operation_id="cards_save",
        summary="Save a card: the number goes to the token vault, the answer carries its token",
        request=CardInput,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: CardOutput},
    )
    def post(self, request):
        data = CardInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        # Input refusals come before the idempotency record, so they are not stored (ADR 0006).
        services.payment_card_input_check(
            number=values["number"], exp_month=values["exp_month"], exp_year=values["exp_year"]
        )

        def operation():
            card = services.payment_card_save(
                owner=request.user,
                number=values["number"],
                exp_month=values["exp_month"],
                exp_year=values["exp_year"],
                holder=values["holder"],
                actor=Actor.from_request(request),
            )
            return 201, card_out(card)

        return idempotent_response(request, request.data, operation)


class CardDetailApi(APIView):
    """For anyone but the card's owner (a client-only token included) the card does not exist (404)."""

    permission_classes = [HasRequiredScopes]
    required_scopes = {"GET": ["cards:read"], "DELETE": ["cards:write"]}

    @extend_schema(operation_id="cards_get", summary="One of the caller's cards", responses=CardOutput)
    def get(self, request, card_id):
        return Response(card_out(selectors.payment_card_get(owner=_customer(request), public_id=card_id)))

    @extend_schema(
        operation_id="cards_delete",
        summary="Delete a card: its number is crypto-shredded in the vault",
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={204: None},
    )
    def delete(self, request, card_id):
        def operation():
            services.payment_card_delete(owner=_customer(request), public_id=card_id, actor=Actor.from_request(request))
            return 204, {}

        return idempotent_response(request, {}, operation)


def _customer(request):
    """The caller when it is a customer; a client-only token owns no card, so every id is unknown to it."""
    user = request.user
    if user is None or not getattr(user, "is_authenticated", False) or not hasattr(user, "customer_profile"):
        raise services.CardNotFound()
    return user


card_urlpatterns = [
    path("cards", CardListCreateApi.as_view(), name="cards"),
    path("cards/<uuid:card_id>", CardDetailApi.as_view(), name="card"),
]
