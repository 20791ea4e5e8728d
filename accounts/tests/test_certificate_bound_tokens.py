"""RFC 8705 in-process: a partner pinned (four eyes) to certificate A gets tokens bound to A, usable with A only.

The terminator is played by what it does for the application: the request
arrives with no peer address (its Unix socket) and the escaped PEM in
`X-Client-Cert`. The same header over TCP is ignored. A real nginx in front of
a real gunicorn socket is `pki/tests/test_partner_mtls.py`. Cost: about 3 s.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.utils import timezone

from accounts.api_keys.services import partner_api_key_issue
from accounts.approvals.kinds_client_certificates import client_certificate_change_request
from accounts.approvals.models import ApprovalRequest
from accounts.approvals.services import approval_request_approve
from accounts.models import OAuthClientCertificate, User
from accounts.oauth.client_certificates import ClientCertificateRefused
from accounts.services import staff_create
from accounts.tests.oauth_helpers import basic_auth, partner_client
from audit.models import AuditEvent
from audit.services.events import Actor
from fintech.middleware.client_certificate import x5t_s256
from pki.models import Certificate

pytestmark = pytest.mark.django_db


def self_signed(name: str = "partner.example", *, days: int = 30, ca: bool = False) -> tuple[x509.Certificate, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=2))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return certificate, certificate.public_bytes(serialization.Encoding.PEM).decode()


def _admin() -> User:
    return staff_create(email=f"sec.{uuid.uuid4().hex[:10]}@fintech.example", password=None, roles=["security_admin"])


def pin(application, pem: str) -> ApprovalRequest:
    """Ask as one security admin, approve as another (a second factor just verified)."""
    approval = client_certificate_change_request(
        application=application, certificate_pem=pem, requested_by=_admin(), reason="partner onboarding"
    )
    return approval_request_approve(
        approval_id=approval.public_id, approver=_admin(), change_hash=approval.change_hash,
        mfa_verified_at=timezone.now(),
    )  # fmt: skip


def over_terminator(pem: str | None) -> dict[str, str]:
    """What nginx's Unix socket hands gunicorn: no peer address, the certificate it saw (or none)."""
    return {"REMOTE_ADDR": "", **({"HTTP_X_CLIENT_CERT": quote(pem)} if pem else {})}


def token_with(client, application, pem: str | None, **extra):
    return client.post(
        "/o/token/",
        {"grant_type": "client_credentials", "client_id": application.client_id, "scope": "accounts:read"},
        **over_terminator(pem), **extra,
    )  # fmt: skip


@pytest.fixture
def partner():
    application, secret = partner_client(can_introspect=True)
    _, api_key = partner_api_key_issue(
        application=application, name="mtls test", scopes="accounts:read", expires_in_days=30,
        actor=Actor.system("test"),
    )  # fmt: skip
    certificate, pem = self_signed()
    pin(application, pem)
    return {"app": application, "secret": secret, "api_key": api_key, "cert": certificate, "pem": pem}


def whoami(client, token: str, api_key: str, pem: str | None):
    return client.get(
        "/v1/partner/whoami",
        HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_API_KEY=api_key, **over_terminator(pem),
    )  # fmt: skip


def test_a_token_bound_to_certificate_a_works_with_a_only_and_introspection_shows_the_thumbprint(client, partner):
    issued = token_with(client, partner["app"], partner["pem"])
    assert issued.status_code == 200, issued.content
    token = issued.json()["access_token"]
    _, other_pem = self_signed("someone-else.example")

    assert whoami(client, token, partner["api_key"], partner["pem"]).status_code == 200
    for pem in (other_pem, None):
        refused = whoami(client, token, partner["api_key"], pem)
        assert refused.status_code == 401
        assert 'error="invalid_token"' in refused["WWW-Authenticate"]
    assert AuditEvent.objects.filter(event_type="token.certificate_mismatch").count() == 2

    seen = client.post(
        "/o/introspect/", {"token": token, "client_id": partner["app"].client_id}, **over_terminator(partner["pem"])
    ).json()
    assert seen["active"] is True
    assert seen["cnf"] == {"x5t#S256": x5t_s256(partner["cert"])}


def test_certificate_headers_reaching_the_application_over_tcp_are_ignored(client, partner):
    """Only the terminator's socket is believed: the same header from a TCP peer authenticates nobody."""
    forged = client.post(
        "/o/token/",
        {"grant_type": "client_credentials", "client_id": partner["app"].client_id, "scope": "accounts:read"},
        REMOTE_ADDR="127.0.0.1", HTTP_X_CLIENT_CERT=quote(partner["pem"]),
    )  # fmt: skip
    assert forged.status_code == 401 and forged.json()["error"] == "invalid_client"

    token = token_with(client, partner["app"], partner["pem"]).json()["access_token"]
    direct = client.get(
        "/v1/partner/whoami", HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_API_KEY=partner["api_key"],
        REMOTE_ADDR="127.0.0.1", HTTP_X_CLIENT_CERT=quote(partner["pem"]),
    )  # fmt: skip
    assert direct.status_code == 401


def test_a_pinned_client_authenticates_with_its_certificate_only(client, partner):
    _, other_pem = self_signed("impostor.example")
    assert token_with(client, partner["app"], other_pem).status_code == 401
    assert token_with(client, partner["app"], None).status_code == 401
    by_secret = client.post(
        "/o/token/", {"grant_type": "client_credentials", "scope": "accounts:read"},
        HTTP_AUTHORIZATION=basic_auth(partner["app"].client_id, partner["secret"]),
    )  # fmt: skip
    assert by_secret.status_code == 401 and by_secret.json()["error"] == "invalid_client"
    introspect_by_secret = client.post(
        "/o/introspect/", {"token": "x"}, HTTP_AUTHORIZATION=basic_auth(partner["app"].client_id, partner["secret"])
    )
    assert introspect_by_secret.status_code == 401


def test_pinning_ends_the_tokens_the_client_got_with_its_secret(client):
    application, secret = partner_client(can_introspect=True)
    issued = client.post(
        "/o/token/", {"grant_type": "client_credentials", "scope": "accounts:read"},
        HTTP_AUTHORIZATION=basic_auth(application.client_id, secret),
    ).json()["access_token"]  # fmt: skip
    _, pem = self_signed("late.example")
    pin(application, pem)

    seen = client.post(
        "/o/introspect/", {"token": issued, "client_id": application.client_id}, **over_terminator(pem)
    ).json()
    assert seen == {"active": False}


def test_an_unpinned_partner_keeps_its_secret_and_gets_unbound_tokens(client):
    application, secret = partner_client(can_introspect=True)
    _, pem = self_signed()
    assert token_with(client, application, pem).status_code == 401  # a certificate nobody pinned
    issued = client.post(
        "/o/token/", {"grant_type": "client_credentials", "scope": "accounts:read"},
        HTTP_AUTHORIZATION=basic_auth(application.client_id, secret),
    )  # fmt: skip
    assert issued.status_code == 200
    seen = client.post(
        "/o/introspect/", {"token": issued.json()["access_token"]},
        HTTP_AUTHORIZATION=basic_auth(application.client_id, secret),
    ).json()  # fmt: skip
    assert seen["active"] is True and "cnf" not in seen


def test_pinning_waits_for_a_second_security_admin_and_is_watched_for_expiry(partner):
    application, _ = partner_client()
    _, pem = self_signed("second.example")
    approval = client_certificate_change_request(
        application=application, certificate_pem=pem, requested_by=_admin(), reason="onboarding"
    )
    assert approval.status == ApprovalRequest.Status.PENDING
    assert not OAuthClientCertificate.objects.filter(application=application).exists()
    watched = Certificate.objects.get(fingerprint_sha256=partner["cert"].fingerprint(hashes.SHA256()).hex())
    assert watched.kind == Certificate.Kind.PARTNER and watched.status == Certificate.Status.ACTIVE


def test_a_pin_written_with_the_database_login_authenticates_nobody(client):
    application, _ = partner_client()
    certificate, pem = self_signed()
    OAuthClientCertificate.objects.create(
        application=application, x5t_s256=x5t_s256(certificate), certificate_pem=pem, subject="CN=x",
        not_after=certificate.not_valid_after_utc, approval_public_id=uuid.uuid4(), mac="0" * 64,
    )  # fmt: skip
    assert token_with(client, application, pem).status_code == 401
    refused = AuditEvent.objects.get(event_type="oauth.client_certificate_mac_invalid")
    assert refused.object_id == application.client_id


def test_swapping_two_clients_ids_with_the_database_login_does_not_carry_a_pin_over(client):
    """The pin's MAC names the client row, not only its id: the row the tokens, keys and policies hang on."""
    from oauth2_provider.models import Application

    pinned, _ = partner_client()
    other, _ = partner_client()
    _, pem = self_signed("swap.example")
    pin(pinned, pem)
    pinned_id, other_id = pinned.client_id, other.client_id
    Application.objects.filter(pk=pinned.pk).update(client_id="swap-tmp")
    Application.objects.filter(pk=other.pk).update(client_id=pinned_id)
    Application.objects.filter(pk=pinned.pk).update(client_id=other_id)

    assert token_with(client, Application.objects.get(pk=pinned.pk), pem).status_code == 401


def test_removing_the_pin_cuts_the_partner_off_and_ends_its_bound_tokens(client, partner):
    token = token_with(client, partner["app"], partner["pem"]).json()["access_token"]
    approval = client_certificate_change_request(
        application=partner["app"], certificate_pem="", requested_by=_admin(), reason="contract ended"
    )
    approval_request_approve(
        approval_id=approval.public_id, approver=_admin(), change_hash=approval.change_hash,
        mfa_verified_at=timezone.now(),
    )  # fmt: skip
    assert token_with(client, partner["app"], partner["pem"]).status_code == 401
    assert whoami(client, token, partner["api_key"], partner["pem"]).status_code == 401
    by_old_secret = client.post(
        "/o/token/", {"grant_type": "client_credentials", "scope": "accounts:read"},
        HTTP_AUTHORIZATION=basic_auth(partner["app"].client_id, partner["secret"]),
    )  # fmt: skip
    assert by_old_secret.status_code == 401  # the secret the pin had disabled does not come back
    watched = Certificate.objects.get(fingerprint_sha256=partner["cert"].fingerprint(hashes.SHA256()).hex())
    assert watched.status == Certificate.Status.REVOKED


def test_a_self_signed_certificate_marked_ca_as_openssl_makes_it_can_be_pinned():
    application, _ = partner_client()
    approval = client_certificate_change_request(
        application=application, certificate_pem=self_signed(ca=True)[1], requested_by=_admin(), reason="onboarding"
    )
    assert approval.status == ApprovalRequest.Status.PENDING


@pytest.mark.parametrize("shape", ["expired", "two", "garbage", "rsa1024"])
def test_an_unfit_certificate_cannot_be_asked_for(shape):
    application, _ = partner_client()
    pem = {
        "expired": lambda: self_signed(days=-1)[1],
        "rsa1024": _rsa_1024_pem,
        "two": lambda: self_signed()[1] + self_signed()[1],
        "garbage": lambda: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    }[shape]()
    with pytest.raises(ClientCertificateRefused):
        client_certificate_change_request(
            application=application, certificate_pem=pem, requested_by=_admin(), reason="onboarding"
        )


def test_both_metadata_documents_advertise_bound_tokens_and_the_mtls_aliases(client, settings):
    settings.OAUTH_MTLS_BASE_URL = "https://mtls.api.example"
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        data = client.get(path).json()
        assert data["tls_client_certificate_bound_access_tokens"] is True
        assert data["mtls_endpoint_aliases"]["token_endpoint"] == "https://mtls.api.example/o/token/"
        assert data["mtls_endpoint_aliases"]["introspection_endpoint"] == "https://mtls.api.example/o/introspect/"
        assert "self_signed_tls_client_auth" in data["token_endpoint_auth_methods_supported"]


def test_the_command_asks_and_a_second_admin_approves(tmp_path):
    from django.core.management import call_command

    from accounts.tests.operator_helpers import operator_create, operator_stdin

    application, _ = partner_client()
    certificate, pem = self_signed("cmd.example")
    path = tmp_path / "partner.pem"
    path.write_text(pem)
    out = io.StringIO()
    call_command(
        "partner_certificate_pin", application.client_id, "--pem", str(path), "--reason", "onboarding",
        stdin=operator_stdin(operator_create(roles=["security_admin"])), stdout=out,
    )  # fmt: skip
    approval = ApprovalRequest.objects.get(public_id=out.getvalue().strip())
    assert approval.kind == "oauth.client_certificate" and approval.change["x5t_s256"] == x5t_s256(certificate)
    assert not OAuthClientCertificate.objects.filter(application=application).exists()
    approval_request_approve(
        approval_id=approval.public_id, approver=_admin(), change_hash=approval.change_hash,
        mfa_verified_at=timezone.now(),
    )  # fmt: skip
    assert OAuthClientCertificate.objects.get(application=application).x5t_s256 == x5t_s256(certificate)


def test_dots_own_bearer_check_refuses_a_bound_token_without_its_certificate(client, partner):
    """userinfo's path (DOT's validator), not only /v1's: the same rule at every door that reads a token."""
    from oauthlib.common import Request

    from accounts.oauth.validators import FintechOAuth2Validator
    from fintech.middleware.client_certificate import TLS_CLIENT_X5T_S256

    token = token_with(client, partner["app"], partner["pem"]).json()["access_token"]
    _, other_pem = self_signed("other.example")
    other = x509.load_pem_x509_certificate(other_pem.encode())
    for presented, expected in ((x5t_s256(partner["cert"]), True), (x5t_s256(other), False), ("", False)):
        request = Request("https://api.example/o/userinfo/", headers={TLS_CLIENT_X5T_S256: presented})
        assert FintechOAuth2Validator().validate_bearer_token(token, [], request) is expected


def test_the_client_admin_page_shows_the_pin_and_the_method(partner):
    from django.test import Client

    from accounts.tests.mfa_helpers import force_login_with_mfa
    from accounts.tests.operator_helpers import operator_create

    viewer = Client()  # OAuth client pages are the superuser's (no role holds oauth2_provider.view_application)
    force_login_with_mfa(viewer, operator_create(superuser=True))
    page = viewer.get(f"/admin/oauth2_provider/application/{partner['app'].pk}/change/")
    assert page.status_code == 200
    assert "self_signed_tls_client_auth" in page.content.decode()
    assert x5t_s256(partner["cert"]) in page.content.decode()


@pytest.mark.django_db(transaction=True)
def test_two_approvals_racing_to_pin_one_certificate_to_two_clients_pin_it_once():
    from fintech.problems import DomainError
    from ledger.tests.test_concurrency import run_threads

    certificate, pem = self_signed("contested.example")
    clients = [partner_client()[0], partner_client()[0]]
    approvals = [
        client_certificate_change_request(application=app, certificate_pem=pem, requested_by=_admin(), reason="x")
        for app in clients
    ]
    approvers = [_admin(), _admin()]

    def approve(index: int) -> str:
        try:
            approval_request_approve(
                approval_id=approvals[index].public_id, approver=approvers[index],
                change_hash=approvals[index].change_hash, mfa_verified_at=timezone.now(),
            )  # fmt: skip
        except DomainError as error:
            return error.code
        return "applied"

    outcomes = sorted(run_threads(2, approve))
    assert outcomes[0] == "applied" and outcomes[1] != "applied", outcomes
    assert OAuthClientCertificate.objects.filter(x5t_s256=x5t_s256(certificate)).count() == 1


def _rsa_1024_pem() -> str:
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the weak key refused
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "weak.example")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256())
    )  # fmt: skip
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


@pytest.mark.parametrize("field", ["META", "fintech_x5t_s256", "fintech_verified_refresh_token_id", "fintech_auth"])
def test_request_parameters_never_stand_in_for_what_the_server_decided(client, field):
    """oauthlib answers a missing attribute with the request parameter of that name: none of ours can be one."""
    application, secret = partner_client(can_introspect=True)
    certificate, _ = self_signed("chosen.example")
    issued = client.post(
        "/o/token/", {"grant_type": "client_credentials", "scope": "accounts:read", field: x5t_s256(certificate)},
        HTTP_AUTHORIZATION=basic_auth(application.client_id, secret),
    )  # fmt: skip
    assert issued.status_code == 200, issued.content
    seen = client.post(
        "/o/introspect/", {"token": issued.json()["access_token"]},
        HTTP_AUTHORIZATION=basic_auth(application.client_id, secret),
    ).json()  # fmt: skip
    assert seen["active"] is True and "cnf" not in seen


def test_a_mismatch_seen_by_two_doors_of_one_request_is_recorded_once(client, partner):
    """The limiter's lookup (the Django request) and DOT's own check (an oauthlib request over a copy of its
    META, userinfo's path) may both refuse one bound token: one request, one audit record."""
    from django.test import RequestFactory
    from oauthlib.common import Request

    from accounts.oauth.tokens import access_token_find, certificate_mismatch_record

    raw = token_with(client, partner["app"], partner["pem"]).json()["access_token"]
    token = access_token_find(raw, lookup="test")
    request = RequestFactory().get("/o/userinfo/", REMOTE_ADDR="")

    certificate_mismatch_record(token, request)
    certificate_mismatch_record(token, Request("https://api.example/o/userinfo/", headers=dict(request.META)))

    assert AuditEvent.objects.filter(event_type="token.certificate_mismatch").count() == 1


def test_revocation_takes_the_same_client_authentication_as_the_token_endpoint(client, partner):
    """Every door where the client authenticates (token, introspection, revocation) takes the certificate alone."""
    token = token_with(client, partner["app"], partner["pem"]).json()["access_token"]
    by_secret = client.post(
        "/o/revoke_token/", {"token": token},
        HTTP_AUTHORIZATION=basic_auth(partner["app"].client_id, partner["secret"]),
    )  # fmt: skip
    assert by_secret.status_code == 401
    assert whoami(client, token, partner["api_key"], partner["pem"]).status_code == 200  # not revoked

    by_certificate = client.post(
        "/o/revoke_token/", {"token": token, "client_id": partner["app"].client_id}, **over_terminator(partner["pem"])
    )
    assert by_certificate.status_code == 200
    assert whoami(client, token, partner["api_key"], partner["pem"]).status_code == 401


def test_rotating_a_pinned_clients_secret_does_not_reopen_the_secret_door(client, partner):
    from accounts.oauth.clients import oauth_client_rotate_secret

    secret = oauth_client_rotate_secret(application=partner["app"], actor=Actor.system("test"))
    by_secret = client.post(
        "/o/token/", {"grant_type": "client_credentials", "scope": "accounts:read"},
        HTTP_AUTHORIZATION=basic_auth(partner["app"].client_id, secret),
    )  # fmt: skip
    assert by_secret.status_code == 401
    assert token_with(client, partner["app"], partner["pem"]).status_code == 200
