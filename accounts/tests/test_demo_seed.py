from __future__ import annotations

import base64
import json
import os
import time

import pytest
from django.core.management import CommandError, call_command
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from audit.models import AuditEvent


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    return tmp_path


@pytest.mark.django_db
def test_demo_seed_is_idempotent_and_keeps_generated_passwords_out_of_the_repo(var_dir, capsys):
    call_command("demo_seed")
    first = (var_dir / "demo-logins.json").read_text()
    call_command("demo_seed")

    assert (var_dir / "demo-logins.json").read_text() == first
    assert (var_dir / "demo-logins.json").stat().st_mode & 0o777 == 0o600
    assert User.objects.filter(is_staff=False).count() == 2
    assert User.objects.filter(is_staff=True).count() == 6  # two of each role: four eyes
    assert "/v1/docs" in capsys.readouterr().out
    officer = User.objects.get(email="compliance@demo.fintech.example")
    assert list(officer.groups.values_list("name", flat=True)) == ["compliance_officer"]


@pytest.mark.django_db
def test_demo_seed_refuses_where_demo_data_is_not_allowed(var_dir, settings):
    settings.DEMO_DATA_ALLOWED = False

    with pytest.raises(CommandError):
        call_command("demo_seed")
    assert not User.objects.exists()


@pytest.mark.django_db
def test_printed_passwords_work_even_when_the_users_predate_the_logins_file(var_dir, tmp_path_factory, settings):
    call_command("demo_seed")
    settings.VAR_DIR = tmp_path_factory.mktemp("another-checkout")

    call_command("demo_seed")

    logins = json.loads((settings.VAR_DIR / "demo-logins.json").read_text())
    for email, password in logins["passwords"].items():
        assert User.objects.get(email=email).check_password(password)
    for email, uri in logins["otpauth_uris"].items():  # and the authenticator secrets
        (device,) = TOTPDevice.objects.filter(user__email=email, confirmed=True)
        assert base64.b32encode(device.bin_key).decode().rstrip("=") in uri


@pytest.mark.django_db
def test_demo_seed_registers_a_pkce_mobile_app_and_a_partner_once(var_dir):
    from oauth2_provider.models import Application

    call_command("demo_seed")
    call_command("demo_seed")

    mobile = Application.objects.get(name="Fintech Mobile (demo)")
    partner = Application.objects.get(name="Acme Payments (demo partner)")
    assert (mobile.client_type, mobile.authorization_grant_type) == ("public", "authorization-code")
    assert mobile.redirect_uris == "http://127.0.0.1:8765/callback"
    assert (partner.client_type, partner.authorization_grant_type) == ("confidential", "client-credentials")
    stored = json.loads((var_dir / "demo-oauth-clients.json").read_text())
    assert stored["partner_client_id"] == partner.client_id
    assert partner.client_secret != stored["partner_client_secret"]  # only its hash is in the database


@pytest.mark.django_db
def test_a_second_checkout_gets_a_working_partner_secret_without_losing_the_client(var_dir, settings, tmp_path_factory):
    from django.contrib.auth.hashers import check_password
    from oauth2_provider.models import Application

    call_command("demo_seed")
    partner_before = Application.objects.get(name="Acme Payments (demo partner)")
    settings.VAR_DIR = tmp_path_factory.mktemp("second-checkout")

    call_command("demo_seed")

    partner = Application.objects.get(name="Acme Payments (demo partner)")
    stored = json.loads((settings.VAR_DIR / "demo-oauth-clients.json").read_text())
    assert partner.pk == partner_before.pk
    assert check_password(stored["partner_client_secret"], partner.client_secret)


@pytest.mark.django_db
def test_demo_staff_get_a_confirmed_authenticator_whose_uri_is_in_the_logins_file(
    var_dir, capsys, client, isolated_throttle
):
    call_command("demo_seed")

    logins = json.loads((var_dir / "demo-logins.json").read_text())
    assert set(logins) == {"passwords", "otpauth_uris"}
    assert set(logins["otpauth_uris"]) == {
        f"{role}{n}@demo.fintech.example" for role in ("compliance", "operations", "security") for n in ("", "2")
    }
    uri = logins["otpauth_uris"]["security@demo.fintech.example"]
    assert uri.startswith("otpauth://totp/Fintech%3Asecurity%40demo.fintech.example?secret=")
    assert uri in capsys.readouterr().out
    created = AuditEvent.objects.filter(event_type="staff.created")
    assert created.count() == 6 and {event.actor_client for event in created} == {"system:demo_seed"}
    # The demo staff member signs in with the password and a code computed from the URI's secret.
    device = TOTPDevice.objects.get(user__email="security@demo.fintech.example", confirmed=True)
    secret = uri.split("secret=")[1].split("&")[0]
    totp = TOTP(base64.b32decode(secret + "=" * (-len(secret) % 8)), device.step, device.t0, device.digits)
    totp.time = time.time()
    client.post(
        "/accounts/login/",
        {"username": "security@demo.fintech.example", "password": logins["passwords"]["security@demo.fintech.example"]},
    )
    verified = client.post("/accounts/login/mfa/", {"otp_code": f"{totp.token():06d}"})
    assert verified.status_code == 302
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_an_older_logins_file_of_passwords_only_is_upgraded_and_its_passwords_kept(var_dir):
    path = var_dir / "demo-logins.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"alice@demo.fintech.example": "an-old-password-1"}, handle)

    call_command("demo_seed")

    logins = json.loads(path.read_text())
    assert logins["passwords"]["alice@demo.fintech.example"] == "an-old-password-1"
    assert len(logins["otpauth_uris"]) == 6
    assert path.stat().st_mode & 0o777 == 0o600
    assert User.objects.get(email="alice@demo.fintech.example").check_password("an-old-password-1")
