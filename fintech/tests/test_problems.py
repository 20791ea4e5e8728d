"""Every API error has one shape: RFC 9457 problem details with a stable code."""

from __future__ import annotations

import pytest
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from fintech.problems import DomainError

PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "instance", "request_id"}


class AccountFrozen(DomainError):
    status = 409
    code = "account_frozen"
    title = "Account is frozen"


class TransferInput(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    reference = serializers.CharField(max_length=10)


class ProbeView(APIView):
    permission_classes = [AllowAny]

    def post(self, request):
        if request.query_params.get("frozen"):
            raise AccountFrozen()
        TransferInput(data=request.data).is_valid(raise_exception=True)


class PrivateView(APIView):
    def get(self, request):
        return None


@pytest.fixture
def factory():
    return APIRequestFactory()


def test_validation_errors_list_each_field_with_its_code(factory):
    request = factory.post("/v1/probe", {"amount": "12.345", "reference": "x" * 11}, format="json")

    response = ProbeView.as_view()(request).render()

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.data
    assert set(body) >= PROBLEM_KEYS
    assert body["code"] == "validation_error"
    assert body["status"] == 400
    assert body["type"] == "https://errors.fintech.example/validation_error"
    assert sorted((e["field"], e["code"]) for e in body["errors"]) == [
        ("amount", "max_decimal_places"),
        ("reference", "max_length"),
    ]


def test_domain_errors_keep_their_own_code_and_status(factory):
    response = ProbeView.as_view()(factory.post("/v1/probe?frozen=1", {}, format="json"))

    assert response.status_code == 409
    assert response.data["code"] == "account_frozen"
    assert response.data["title"] == "Account is frozen"


def test_malformed_json_is_a_problem_not_a_500(factory):
    request = factory.post("/v1/probe", b"{not json", content_type="application/json")

    response = ProbeView.as_view()(request)

    assert response.status_code == 400
    assert response.data["code"] == "malformed_request"


def test_missing_credentials_are_401_with_a_stable_code(factory):
    response = PrivateView.as_view()(factory.get("/v1/private"))

    assert response.status_code == 401
    assert response.data["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == 'Bearer realm="fintech"'


def test_unknown_api_paths_are_problem_documents(client, db):
    response = client.get("/v1/no/such/thing")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert response.json()["request_id"] == response["X-Request-ID"]
