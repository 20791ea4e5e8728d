"""System checks for the vault's key configuration (`manage.py check --deploy`)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def vault_key_settings_check(app_configs, **kwargs) -> list[Error]:
    """Production names its key directory, outside the repository, and never generates keys."""
    errors = []
    if getattr(settings, "VAULT_KEK_GENERATE", False):
        errors.append(
            Error("VAULT_KEK_GENERATE is on: a missing vault key would be silently replaced.", id="tokenvault.E001")
        )
    directory = getattr(settings, "VAULT_KEK_DIR", None)
    if not directory:
        errors.append(Error("VAULT_KEK_DIR is not set.", id="tokenvault.E002"))
    elif Path(directory).resolve().is_relative_to(Path(settings.BASE_DIR).resolve()):
        errors.append(Error("VAULT_KEK_DIR must be outside the repository.", id="tokenvault.E003"))
    return errors
