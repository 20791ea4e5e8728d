"""Deploy checks on the vault's key settings."""

from __future__ import annotations

from tokenvault.checks import vault_key_settings_check


def ids(settings_errors):
    return [error.id for error in settings_errors]


def test_production_like_settings_pass(settings, tmp_path):
    settings.VAULT_KEK_DIR = str(tmp_path / "kek")
    settings.VAULT_KEK_GENERATE = False
    assert vault_key_settings_check(None) == []


def test_generation_missing_dir_and_dir_in_repository_are_errors(settings):
    settings.VAULT_KEK_GENERATE = True
    settings.VAULT_KEK_DIR = None
    assert ids(vault_key_settings_check(None)) == ["tokenvault.E001", "tokenvault.E002"]
    settings.VAULT_KEK_GENERATE = False
    settings.VAULT_KEK_DIR = str(settings.BASE_DIR / "var" / "keys" / "vault-kek")
    assert ids(vault_key_settings_check(None)) == ["tokenvault.E003"]


def test_the_reaper_check_refuses_a_short_grace_and_an_unknown_token_field(settings, monkeypatch):
    from django.apps import apps

    from tokenvault.checks import vault_reaper_settings_check

    assert vault_reaper_settings_check(None) == []
    settings.VAULT_ORPHAN_GRACE_HOURS = 0
    monkeypatch.setattr(apps.get_app_config("accounts"), "vault_token_fields", (("PaymentCard", "tokn"),))
    assert ids(vault_reaper_settings_check(None)) == ["tokenvault.E009", "tokenvault.E010"]
