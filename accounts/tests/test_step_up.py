"""RFC 9470 step-up: a large amount needs a token whose login proved MFA recently."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from accounts.mfa import MFA_VERIFIED_AT_SESSION_KEY
from accounts.models import OAuthSession
from accounts.oauth.row_macs import oauth_session_macs_store
from accounts.permissions import HasRequiredScopes
from accounts.services import customer_create
from accounts.step_up import require_recent_mfa, step_up_required_for
from accounts.tests.oauth_helpers import exchange_code, mobile_client, obtain_code, pkce_pair

pytestmark = pytest.mark.django_db


class PaymentProbe(APIView):
    required_scopes = ["accounts:read"]
    permission_classes = [HasRequiredScopes]

    def post(self, request):
        require_recent_mfa(
            access_token=request.auth,
            amount_minor=int(request.data["amount_minor"]),
            currency=request.data.get("currency", "EUR"),
        )
        return Response({"ok": True})


@pytest.fixture
def token(client):
    customer = customer_create(email="stepper@example.com", password=None)
    client.force_login(customer)
    app = mobile_client()
    verifier, challenge = pkce_pair()
    code = obtain_code(client, app, challenge)["code"]
    return exchange_code(client, app, code, verifier).json()["access_token"]


def call(token: str, amount_minor: int, currency: str = "EUR"):
    request = APIRequestFactory().post(
        "/v1/probe",
        {"amount_minor": amount_minor, "currency": currency},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    return PaymentProbe.as_view()(request).render()


def test_small_amounts_need_no_step_up(token):
    assert call(token, 100_000).status_code == 200


# The defaults of STEP_UP_THRESHOLDS: 1,000.00 EUR, 150,000 JPY, 300.000 KWD (each in its own minor units).
@pytest.mark.parametrize(
    ("currency", "at_threshold_minor"),
    [("EUR", 1_000_00), ("USD", 1_000_00), ("GBP", 1_000_00), ("CHF", 1_000_00), ("JPY", 150_000), ("KWD", 300_000)],
)
def test_the_threshold_is_per_currency_in_its_own_minor_units(currency, at_threshold_minor):
    assert step_up_required_for(at_threshold_minor, currency) is False
    assert step_up_required_for(at_threshold_minor + 1, currency) is True


def test_the_same_minor_units_are_small_in_one_currency_and_large_in_another(token):
    # 100,001 minor units: 1,000.01 EUR (above), 100,001 JPY (below 150,000), 100.001 KWD (below 300.000).
    assert call(token, 100_001, "EUR").status_code == 401
    assert call(token, 100_001, "JPY").status_code == 200
    assert call(token, 100_001, "KWD").status_code == 200
    assert call(token, 300_001, "KWD").status_code == 401
    assert call(token, 150_001, "JPY").status_code == 401


def test_a_currency_without_a_threshold_needs_step_up_for_every_amount(token, settings):
    settings.STEP_UP_THRESHOLDS_MINOR = {"EUR": 1_000_00}

    assert step_up_required_for(1, "SEK") is True
    assert call(token, 1, "SEK").status_code == 401
    assert call(token, 1, "EUR").status_code == 200


def test_no_thresholds_configured_means_step_up_for_every_amount(settings):
    settings.STEP_UP_THRESHOLDS_MINOR = {}

    assert step_up_required_for(1, "EUR") is True


def test_a_zero_threshold_means_step_up_for_every_positive_amount(settings):
    settings.STEP_UP_THRESHOLDS_MINOR = {"EUR": 0}

    assert (step_up_required_for(0, "EUR"), step_up_required_for(1, "EUR")) == (False, True)


def test_a_large_amount_without_mfa_gets_the_rfc_9470_challenge(token):
    response = call(token, 100_001)

    assert response.status_code == 401
    challenge = response["WWW-Authenticate"]
    assert 'error="insufficient_user_authentication"' in challenge
    assert 'acr_values="urn:fintech:acr:mfa"' in challenge
    assert "max_age=300" in challenge
    assert response.data["code"] == "step_up_required"


def test_a_large_amount_passes_with_recent_mfa_and_fails_when_it_is_stale(token):
    OAuthSession.objects.update(mfa_verified_at=timezone.now() - timedelta(seconds=60))
    oauth_session_macs_store(OAuthSession.objects.all())  # as if the login had proved MFA then (issue 12: MAC'd)
    assert call(token, 500_000).status_code == 200

    OAuthSession.objects.update(mfa_verified_at=timezone.now() - timedelta(seconds=301))
    oauth_session_macs_store(OAuthSession.objects.all())
    assert call(token, 500_000).status_code == 401


def test_mfa_proven_in_the_browser_session_reaches_the_token(client):
    customer = customer_create(email="mfa.user@example.com", password=None)
    client.force_login(customer)
    device = TOTPDevice.objects.create(user=customer, name="phone", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id  # django-otp: this session passed the device
    session[MFA_VERIFIED_AT_SESSION_KEY] = timezone.now().isoformat()
    session.save()
    app = mobile_client()
    verifier, challenge = pkce_pair()

    code = obtain_code(client, app, challenge)["code"]
    token = exchange_code(client, app, code, verifier).json()["access_token"]

    assert OAuthSession.objects.get().mfa_verified_at is not None
    assert call(token, 500_000).status_code == 200


def test_an_authorization_request_asking_for_mfa_sends_a_password_only_session_to_the_second_factor(client):
    customer = customer_create(email="no.mfa@example.com", password=None)
    client.force_login(customer)
    app = mobile_client()
    _, challenge = pkce_pair()
    from accounts.tests.oauth_helpers import authorize_query

    response = client.get(f"/o/authorize/?{authorize_query(app, challenge, acr_values='urn:fintech:acr:mfa')}")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/mfa/")
