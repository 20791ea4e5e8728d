"""The API role's vault endpoint: `POST /v1/vault/detokenize` for partner servers allowed to read values.

Who: a client-credentials token with scope `vault:detokenize` plus the
client's API key (`PartnerApiView`), and a client policy naming the token
types it may read (tokenvault/selectors.py). How much: a sliding window of
values per client (tokenvault/quota.py). What: the vault role decides per
token type and records a `pii.read` row with the purpose for every value it
releases (ADR 0012).

No Idempotency-Key: this is a read. Its only side effects are the audit rows
and the quota count, and both must happen again on a retry, because a retry
discloses the values again (ADR 0012).
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from accounts.partner_apis import API_KEY_PARAMETER, PartnerApiView
from audit.services.events import PII_PURPOSES, Actor
from fintech.free_text import FreeTextField
from tokenvault.client import vault_client
from tokenvault.quota import detokenize_quota_take
from tokenvault.selectors import DETOKENIZE_SCOPE, detokenize_permitted_types
from tokenvault.services.records import MAX_TOKEN_LENGTH


class DetokenizeApi(PartnerApiView):
    """Read the values behind up to VAULT_DETOKENIZE_MAX_TOKENS tokens, all or nothing."""

    required_scopes = [DETOKENIZE_SCOPE]

    @extend_schema_serializer(component_name="VaultDetokenizeRequest")
    class InputSerializer(serializers.Serializer):
        tokens = serializers.ListField(
            child=serializers.CharField(max_length=MAX_TOKEN_LENGTH), min_length=1, help_text="distinct tokens"
        )
        purpose = serializers.ChoiceField(choices=sorted(PII_PURPOSES), help_text="recorded with every value read")
        reason = FreeTextField(
            max_length=500, allow_blank=True, default="", help_text="free text, audited; never a card number (422)"
        )

        def validate_tokens(self, tokens: list[str]) -> list[str]:
            distinct = list(dict.fromkeys(tokens))
            limit = settings.VAULT_DETOKENIZE_MAX_TOKENS
            if len(distinct) > limit:
                raise serializers.ValidationError(f"at most {limit} tokens per call", code="max_length")
            return distinct

    @extend_schema_serializer(component_name="VaultDetokenizeResponse")
    class OutputSerializer(serializers.Serializer):
        values = serializers.DictField(child=serializers.CharField(), help_text="token -> value in clear")

    @extend_schema(
        request=InputSerializer,
        responses=OutputSerializer,
        parameters=[API_KEY_PARAMETER],
        operation_id="vault_detokenize",
        summary="Read vaulted values in clear (partner servers with a detokenize policy; audited, rate limited)",
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        permitted = detokenize_permitted_types(access_token=request.auth)
        detokenize_quota_take(client_id=request.auth.application.client_id, values=len(data["tokens"]))
        values = vault_client().detokenize(
            tokens=data["tokens"],
            actor=Actor.from_request(request),
            purpose=data["purpose"],
            permitted_token_types=permitted,
            reason=data["reason"],
        )
        return Response(self.OutputSerializer({"values": values}).data, headers={"Cache-Control": "no-store"})
