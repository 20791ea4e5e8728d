"""Partner API: server-to-server calls from partners, authenticated by an OAuth token AND an API key.

Mounted under /v1/ via `partner_urlpatterns`. Every view here takes its
permissions from `PartnerApiView`: the token's scopes (`HasRequiredScopes`)
and then the key (`PartnerApiKeyMatchesToken`).
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api_keys.permissions import API_KEY_HEADER, PartnerApiKeyMatchesToken
from accounts.permissions import HasRequiredScopes

API_KEY_PARAMETER = OpenApiParameter(
    API_KEY_HEADER,
    location=OpenApiParameter.HEADER,
    required=True,
    description="The partner's API key, sent with the client's bearer token; 401 invalid_api_key otherwise.",
)


class PartnerApiView(APIView):
    """Base of partner views: both credentials required, and a challenge on every 401."""

    permission_classes = [HasRequiredScopes, PartnerApiKeyMatchesToken]


class PartnerWhoAmIApi(PartnerApiView):
    """Which client and key this call authenticated as, and the scopes both credentials grant."""

    required_scopes = ["accounts:read"]
    permission_classes = [HasRequiredScopes, PartnerApiKeyMatchesToken]

    @extend_schema_serializer(component_name="PartnerWhoAmI")
    class OutputSerializer(serializers.Serializer):
        client_id = serializers.CharField()
        api_key_prefix = serializers.CharField()
        scopes = serializers.ListField(child=serializers.CharField(), help_text="held by the token AND the key")

    @extend_schema(responses=OutputSerializer, parameters=[API_KEY_PARAMETER], operation_id="partner_whoami")
    def get(self, request):
        api_key = request.partner_api_key
        effective_scopes = set(request.auth.scope.split()) & set(api_key.scopes.split())
        data = {
            "client_id": request.auth.application.client_id,
            "api_key_prefix": api_key.prefix,
            "scopes": sorted(effective_scopes),
        }
        return Response(self.OutputSerializer(data).data)


partner_urlpatterns = [
    path("partner/whoami", PartnerWhoAmIApi.as_view(), name="partner-whoami"),
]
