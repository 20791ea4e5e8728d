from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User


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
    assert User.objects.filter(is_staff=True).count() == 3
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

    passwords = json.loads((settings.VAR_DIR / "demo-logins.json").read_text())
    for email, password in passwords.items():
        assert User.objects.get(email=email).check_password(password)


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
