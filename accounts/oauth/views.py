"""The authorization server's endpoints: DOT's, with our rules wrapped around them."""

from __future__ import annotations

import base64
import json

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.http import JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider import views as dot_views
from oauth2_provider.models import Application

from accounts.mfa import session_mfa_verified_at
from accounts.models import OAuthClientPolicy
from accounts.oauth.client_certificates import client_authenticated_by_certificate, has_certificate_pin
from accounts.oauth.clients import client_id_possible
from accounts.oauth.tokens import access_token_find
from accounts.oauth.validators import as_utc_text
from audit.models import AuditEvent
from audit.services.events import Actor, audit_event_record
from fintech.middleware.client_certificate import request_x5t_s256

MFA_ACR = "urn:fintech:acr:mfa"


class AuthorizationView(dot_views.AuthorizationView):
    """Consent page; honours `max_age` and `acr_values` (RFC 9470 step-up) before issuing a code."""

    template_name = "oauth2_provider/authorize.html"

    def get(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            redirect = self._reauthentication_needed(request)
            if redirect is not None:
                return redirect
        return super().get(request, *args, **kwargs)

    def _reauthentication_needed(self, request):
        max_age = request.GET.get("max_age", "")
        wants_mfa = MFA_ACR in request.GET.get("acr_values", "").split()
        now = timezone.now()
        if (
            max_age.isdigit()
            and request.user.last_login
            and (now - request.user.last_login).total_seconds() > int(max_age)
        ):
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        if wants_mfa:
            verified_at = session_mfa_verified_at(request)
            limit = int(max_age) if max_age.isdigit() else settings.STEP_UP_MAX_AGE_SECONDS
            if verified_at is None or (now - verified_at).total_seconds() > limit:
                return redirect_to_login(request.get_full_path(), reverse("login-mfa"))
        return None

    def create_authorization_response(self, request, scopes, credentials, allow):
        credentials = {
            **credentials,
            "fintech_auth": {
                "authenticated_at": as_utc_text(request.user.last_login),
                "mfa_verified_at": as_utc_text(session_mfa_verified_at(request)),
            },
        }
        return super().create_authorization_response(request, scopes, credentials, allow)


@method_decorator(csrf_exempt, name="dispatch")
class TokenView(dot_views.TokenView):
    """One transaction per exchange: the grant row lock in the validator serialises racing code replays."""

    def post(self, request, *args, **kwargs):
        with transaction.atomic():
            return super().post(request, *args, **kwargs)


def _application_named(client_id: str) -> Application | None:
    return Application.objects.filter(client_id=client_id).first() if client_id_possible(client_id) else None


def _certificate_client(request, presented: str) -> Application | None:
    """RFC 8705: the client named by `client_id` in the body, if the connection presented its pinned certificate."""
    application = _application_named(request.POST.get("client_id", ""))
    if application is None or not client_authenticated_by_certificate(application, presented):
        return None
    return application


def _authenticated_client(request) -> Application | None:
    """HTTP Basic client authentication against the hashed client secret, or the client's pinned certificate
    (RFC 8705, with `client_id` in the body); a client with a pin is refused with its secret, as at /o/token/."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    presented = request_x5t_s256(request)
    if not header and presented:
        return _certificate_client(request, presented)
    if not header.startswith("Basic "):
        return None
    try:
        client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:  # not base64, not ASCII, not UTF-8
        return None
    application = _application_named(client_id)
    if (
        application is None
        or application.client_type != Application.CLIENT_CONFIDENTIAL
        or has_certificate_pin(application)  # it authenticates with its certificate alone
    ):
        return None
    return application if check_password(secret, application.client_secret) else None


@method_decorator(csrf_exempt, name="dispatch")
class IntrospectView(View):
    """RFC 7662, POST only, for confidential clients that staff granted introspection.

    DOT's own view lets any client with valid credentials introspect any token.
    Here a client without the permission learns nothing (401/403 before the
    token is even looked up), and `sub` is a public id, never an email.
    """

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        client = _authenticated_client(request)
        if client is None:
            return JsonResponse(
                {"error": "invalid_client"}, status=401, headers={"WWW-Authenticate": 'Basic realm="fintech"'}
            )
        if not OAuthClientPolicy.objects.filter(application=client, can_introspect=True).exists():
            audit_event_record(
                event_type="permission.denied",
                outcome=AuditEvent.Outcome.DENIED,
                actor=Actor(client=client.client_id),
                object_type="oauth.introspection",
                request=request,
            )
            return JsonResponse({"error": "unauthorized_client"}, status=403)
        raw = request.POST.get("token", "")
        if not raw:
            return JsonResponse({"error": "invalid_request"}, status=400)
        token = access_token_find(raw, lookup="introspection", request=request)
        if token is None or not token.is_valid():
            return JsonResponse({"active": False})
        body = {
            "active": True,
            "scope": token.scope,
            "client_id": token.application.client_id if token.application else None,
            "exp": int(token.expires.timestamp()),
            "token_type": "Bearer",  # nosec B105 - the RFC 7662 token type, not a secret
        }
        if token.user is not None:
            body["sub"] = str(token.user.public_id)
        if token.fintech_x5t_s256:  # RFC 8705 §3.2: the certificate the token is bound to
            body["cnf"] = {"x5t#S256": token.fintech_x5t_s256}
        return JsonResponse(body)


def _mtls_metadata(request, response):
    """RFC 8705 §3.3 and §5 in both discovery documents: tokens can be certificate-bound, and where the
    endpoints that ask for a client certificate live (the terminator's mTLS listener, OAUTH_MTLS_BASE_URL)."""
    data = json.loads(response.content)
    data["tls_client_certificate_bound_access_tokens"] = True
    if settings.OAUTH_MTLS_BASE_URL:
        base = settings.OAUTH_MTLS_BASE_URL.rstrip("/")
        data["mtls_endpoint_aliases"] = {
            name: base + reverse(route)
            for name, route in (
                ("token_endpoint", "oauth2_provider:token"),
                ("revocation_endpoint", "oauth2_provider:revoke-token"),
                ("introspection_endpoint", "oauth2_provider:introspect"),
            )
        }
    answer = JsonResponse(data, status=response.status_code)
    for header in ("Access-Control-Allow-Origin", "Cache-Control"):
        if header in response:
            answer[header] = response[header]
    return answer


class OAuthServerMetadataView(dot_views.OAuthServerMetadataView):
    def get(self, request, *args, **kwargs):
        return _mtls_metadata(request, super().get(request, *args, **kwargs))


class ConnectDiscoveryInfoView(dot_views.ConnectDiscoveryInfoView):
    def get(self, request, *args, **kwargs):
        return _mtls_metadata(request, super().get(request, *args, **kwargs))
