"""Customer-facing API of the accounts domain."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasRequiredScopes, IsCustomer
from accounts.selectors import customer_profile_get, email_masked


class MeApi(APIView):
    """The authenticated customer, with PII masked. Identity comes from the token alone."""

    required_scopes = ["profile:read"]
    permission_classes = [HasRequiredScopes, IsCustomer]

    class OutputSerializer(serializers.Serializer):
        id = serializers.UUIDField(source="user.public_id")
        email = serializers.SerializerMethodField()
        tier = serializers.CharField()
        status = serializers.CharField()
        mfa_enabled = serializers.SerializerMethodField()
        member_since = serializers.DateTimeField(source="user.date_joined")

        def get_email(self, profile) -> str:
            return email_masked(profile.user.email)

        def get_mfa_enabled(self, profile) -> bool:
            from django_otp import devices_for_user

            return any(True for _ in devices_for_user(profile.user, confirmed=True))

    @extend_schema(responses=OutputSerializer, summary="The authenticated customer (PII masked)")
    def get(self, request):
        profile = customer_profile_get(user=request.user)
        return Response(self.OutputSerializer(profile).data)
