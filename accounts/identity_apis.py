"""`/v1/me/identity`: a customer captures (once) and reads their own identity, only ever as masked fragments.

Identity comes from the token alone: there is no id in the URL, so another
customer's identity cannot even be named. The national ID goes to the vault
(through its client, convergent) before the database transaction opens, and
never comes back: responses carry masked fragments only.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.permissions import HasRequiredScopes, IsCustomer
from audit.services.events import Actor
from fintech.idempotency import IDEMPOTENCY_PARAMETER, idempotent_response


class AddressInput(serializers.Serializer):
    line1 = serializers.CharField(max_length=services.ADDRESS_LINE_MAX_CHARS, trim_whitespace=False)
    line2 = serializers.CharField(
        max_length=services.ADDRESS_LINE_MAX_CHARS, required=False, allow_blank=True, trim_whitespace=False
    )
    city = serializers.CharField(max_length=services.ADDRESS_LINE_MAX_CHARS, trim_whitespace=False)
    region = serializers.CharField(
        max_length=services.ADDRESS_LINE_MAX_CHARS, required=False, allow_blank=True, trim_whitespace=False
    )
    postal_code = serializers.CharField(max_length=16)
    country = serializers.CharField(min_length=2, max_length=2)


class IdentityInput(serializers.Serializer):
    full_name = serializers.CharField(max_length=services.FULL_NAME_MAX_CHARS, trim_whitespace=False)
    date_of_birth = serializers.DateField()
    phone = serializers.CharField(max_length=32)
    address = AddressInput()
    national_id = serializers.CharField(max_length=64, write_only=True)


class MeIdentityApi(APIView):
    required_scopes = {"GET": ["profile:read"], "PUT": ["profile:write"]}
    permission_classes = [HasRequiredScopes, IsCustomer]

    @extend_schema(
        operation_id="me_identity_get",
        summary="The caller's identity, masked (initials, birth year, phone hint, country)",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        profile = selectors.customer_profile_get(user=request.user)
        return Response(
            selectors.customer_identity_masked(profile=profile, actor=Actor.from_request(request), request=request)
        )

    @extend_schema(
        operation_id="me_identity_capture",
        summary="Capture the caller's identity once (national ID goes to the token vault)",
        request=IdentityInput,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={200: OpenApiTypes.OBJECT},
    )
    def put(self, request):
        data = IdentityInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        identity = services.identity_validate(
            full_name=fields["full_name"],
            date_of_birth=fields["date_of_birth"],
            phone=fields["phone"],
            postal_address=dict(fields["address"]),
            national_id=fields["national_id"],
        )
        actor = Actor.from_request(request)
        profile = selectors.customer_profile_get(user=request.user)

        def operation():
            # Runs only when no answer is stored under the key: a replay never asks the vault (and
            # still answers while it is down). Already captured: no vault call, the answer is 409.
            # The vault is asked before the profile row is locked (no row lock over a network call);
            # VaultUnavailable (503) is not stored and leaves nothing written.
            token = (
                None
                if profile.identity_captured_at is not None
                else services.identity_national_id_tokenize(identity=identity, actor=actor)
            )
            captured = services.customer_identity_capture(
                user=request.user, identity=identity, national_id_token=token, actor=actor
            )
            return 200, _json_ready(selectors.customer_identity_masked(profile=captured, actor=actor, request=request))

        return idempotent_response(request, request.data, operation)


def _json_ready(body: dict) -> dict:
    """The idempotency record stores the body as JSON: datetimes as RFC 3339 text, like DRF renders them."""
    return {
        key: (value.isoformat().replace("+00:00", "Z") if hasattr(value, "isoformat") else value)
        for key, value in body.items()
    }
