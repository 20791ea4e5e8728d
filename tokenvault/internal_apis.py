"""The vault role's internal API: tokenize, detokenize a batch, shred, and the orphan reaper's two calls (ADR 0012).

Served only by the vault role (`fintech.settings.vault`, URLconf
`tokenvault/internal_urls.py`) to callers holding the service credential
(`tokenvault/service_auth.py`); the API role calls it through
`tokenvault/client.py`. Views stay thin: the services decide and audit.

The caller asserts the acting principal (`actor`): the vault cannot verify
the principal's OAuth token (it holds no OAuth state), so the API role's
authentication is what vouches for it, and the vault's audit rows name it.
For detokenize the caller also says which token types it verified the
principal may read; the vault enforces that against each token's stored type.

Bodies carry card numbers: no view, serializer error or log line here ever
repeats a value, and the access log records the route and status only.
"""

from __future__ import annotations

from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.services.events import Actor
from fintech.free_text import FreeTextField
from tokenvault.service_auth import IsVaultCaller, ServiceTokenAuthentication
from tokenvault.services import (
    MAX_DETOKENIZE_BATCH,
    MAX_REAP_BATCH,
    MAX_REAP_CANDIDATES_PAGE,
    MAX_TOKEN_LENGTH,
    vault_detokenize_many,
    vault_reap,
    vault_reap_candidates,
    vault_shred,
    vault_tokenize,
)

ACTOR_FIELD_LENGTH = 128


class ActorSerializer(serializers.Serializer):
    user = serializers.CharField(max_length=ACTOR_FIELD_LENGTH, allow_blank=True, default="")
    client = serializers.CharField(max_length=ACTOR_FIELD_LENGTH, allow_blank=True, default="")
    staff = serializers.CharField(max_length=ACTOR_FIELD_LENGTH, allow_blank=True, default="")

    def validate(self, attrs):
        if not any(attrs.values()):
            raise serializers.ValidationError("an acting principal is required", code="actor_missing")
        return attrs


def _actor(data: dict) -> Actor:
    return Actor(**data["actor"])


class VaultInternalApi(APIView):
    """Base of the internal views: service credential required, nothing else accepted."""

    authentication_classes = [ServiceTokenAuthentication]
    permission_classes = [IsVaultCaller]
    throttle_classes: list = []
    rate_limit_group = "vault_internal"  # per calling address, in the vault's own Redis namespace (ADR 0017)
    InputSerializer: type[serializers.Serializer]

    def validated_input(self) -> dict:
        """The body checked by the view's `InputSerializer`; a refusal is the usual 400 problem."""
        serializer = self.InputSerializer(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class TokenizeApi(VaultInternalApi):
    class InputSerializer(serializers.Serializer):
        actor = ActorSerializer()
        # Free text here: an unknown type, purpose or value is the service's refusal, with its own code.
        token_type = serializers.CharField(max_length=32)
        # Never trimmed, limited or echoed here: normalisation and its refusals (InvalidCardNumber,
        # InvalidNationalId, also for an overlong value) are the service's, so callers get one code.
        value = serializers.CharField(trim_whitespace=False, allow_blank=True)
        convergent = serializers.BooleanField(default=False)
        format_preserving = serializers.BooleanField(default=False)
        metadata = serializers.DictField(required=False, allow_empty=True)

    def post(self, request):
        data = self.validated_input()
        result = vault_tokenize(
            token_type=data["token_type"],
            value=data["value"],
            convergent=data["convergent"],
            format_preserving=data["format_preserving"],
            metadata=data.get("metadata") or {},
            actor=_actor(data),
        )
        record = result.record
        body = {
            "token": result.token,
            "token_type": record.token_type,
            "created": result.created,
            "last4": record.last4,
            "brand": record.brand,
            "exp_month": record.exp_month,
            "exp_year": record.exp_year,
        }
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class DetokenizeApi(VaultInternalApi):
    class InputSerializer(serializers.Serializer):
        actor = ActorSerializer()
        tokens = serializers.ListField(
            child=serializers.CharField(max_length=MAX_TOKEN_LENGTH), min_length=1, max_length=MAX_DETOKENIZE_BATCH
        )
        purpose = serializers.CharField(max_length=64)
        reason = FreeTextField(max_length=500, allow_blank=True, default="")  # lands in the pii.read rows
        permitted_token_types = serializers.ListField(
            child=serializers.CharField(max_length=32), allow_empty=True, max_length=8
        )

    def post(self, request):
        data = self.validated_input()
        values = vault_detokenize_many(
            tokens=data["tokens"],
            actor=_actor(data),
            purpose=data["purpose"],
            permitted_token_types=frozenset(data["permitted_token_types"]),
            reason=data["reason"],
            request=request._request,
        )
        return Response({"values": values})


class ShredApi(VaultInternalApi):
    class InputSerializer(serializers.Serializer):
        actor = ActorSerializer()
        token = serializers.CharField(max_length=MAX_TOKEN_LENGTH)

    def post(self, request):
        data = self.validated_input()
        vault_shred(token=data["token"], actor=_actor(data))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReapCandidatesApi(VaultInternalApi):
    """Tokens of live records not issued since a cutoff, a keyset page at a time; never a value.

    A POST although it reads, like detokenize: one transport and one body
    format for every internal call, and no query string in any access log.
    """

    class InputSerializer(serializers.Serializer):
        not_issued_since = serializers.DateTimeField()
        after_id = serializers.IntegerField(min_value=0, default=0)
        limit = serializers.IntegerField(min_value=1, max_value=MAX_REAP_CANDIDATES_PAGE)

    def post(self, request):
        candidates = vault_reap_candidates(**self.validated_input())
        return Response({
            "candidates": [
                {"id": item.id, "token": item.token, "token_type": item.token_type} for item in candidates
            ]
        })  # fmt: skip


class ReapApi(VaultInternalApi):
    """Shred the listed tokens still not issued since the cutoff; the answer says which were shredded."""

    class InputSerializer(serializers.Serializer):
        actor = ActorSerializer()
        tokens = serializers.ListField(
            child=serializers.CharField(max_length=MAX_TOKEN_LENGTH), min_length=1, max_length=MAX_REAP_BATCH
        )
        not_issued_since = serializers.DateTimeField()

    def post(self, request):
        data = self.validated_input()
        outcome = vault_reap(tokens=data["tokens"], not_issued_since=data["not_issued_since"], actor=_actor(data))
        return Response({"shredded": outcome.shredded, "skipped": outcome.skipped})
