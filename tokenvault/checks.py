"""System checks for the vault's configuration (`manage.py check --deploy`), per role (ADR 0012)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def vault_key_settings_check(app_configs, **kwargs) -> list[Error]:
    """A process holding the vault database names its key directory, outside the repository, and never generates keys.

    The API role in production holds neither the vault database nor its keys,
    so there is nothing to check there.
    """
    if "vault" not in settings.DATABASES:
        return []
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


@register(Tags.security, deploy=True)
def vault_role_separation_check(app_configs, **kwargs) -> list[Error]:
    """In production the API role reaches the vault over TLS and holds no vault credentials; the vault holds them.

    Only the API-role processes that call the vault (web, worker: fintech/process_keys.py) hold its URL and
    credential; beat and operator processes hold neither, and fintech.checks refuses one that does.
    """
    from fintech.process_keys import process_allows

    errors = []
    role = getattr(settings, "SERVICE_ROLE", "api")
    if role == "api":
        if "vault" in settings.DATABASES or getattr(settings, "VAULT_KEK_DIR", None):
            message = "The API role holds the vault database or its keys; only the vault role may."
            errors.append(Error(message, id="tokenvault.E004"))
        if not process_allows(getattr(settings, "FINTECH_PROCESS", ""), "vault_service_token"):
            return errors
        if not settings.VAULT_URL.startswith("https://"):
            errors.append(Error("VAULT_URL must be an https:// URL.", id="tokenvault.E005"))
        if len(settings.VAULT_SERVICE_TOKEN) < 50:
            errors.append(Error("VAULT_SERVICE_TOKEN must be at least 50 random characters.", id="tokenvault.E006"))
    elif role == "vault":
        if "vault" not in settings.DATABASES:
            errors.append(Error("The vault role needs the vault database.", id="tokenvault.E007"))
        # Its main-database credential may only append audit events (fintech/db_privileges.py grants that role).
        audit_role = settings.VAULT_AUDIT_DATABASE_ROLE
        if settings.DATABASES.get("default", {}).get("USER") != audit_role:
            message = f"The vault role's `default` database must connect as {audit_role} (VAULT_AUDIT_DATABASE_URL)."
            errors.append(Error(message, id="tokenvault.E008"))
        # The vault database has a login of its own: shared with the main database's, one leaked
        # credential would open both (PCI segmentation).
        vault_user = settings.DATABASES.get("vault", {}).get("USER")
        if vault_user and vault_user == settings.DATABASES.get("default", {}).get("USER"):
            message = "The vault role's `vault` database user must differ from its `default` database user."
            errors.append(Error(message, id="tokenvault.E021"))
        if len(settings.VAULT_SERVICE_TOKEN) < 50:
            errors.append(Error("VAULT_SERVICE_TOKEN must be at least 50 random characters.", id="tokenvault.E006"))
    return errors


@register()
def vault_reaper_settings_check(app_configs, **kwargs) -> list[Error]:
    """The orphan reaper's grace leaves in-flight saves alone, and every declared token field exists (API role).

    A `vault_token_fields` entry naming a missing model or field would make the
    reaper fail every night; caught here, at startup, instead.
    """
    if getattr(settings, "SERVICE_ROLE", "api") != "api":
        return []
    from django.core.exceptions import FieldDoesNotExist

    from tokenvault.services.reaper import GRACE_HOURS_MIN, vault_token_fields

    errors = []
    if settings.VAULT_ORPHAN_GRACE_HOURS < GRACE_HOURS_MIN:
        message = f"VAULT_ORPHAN_GRACE_HOURS must be at least {GRACE_HOURS_MIN}."
        errors.append(Error(message, id="tokenvault.E009"))
    try:
        vault_token_fields()
    except (LookupError, FieldDoesNotExist, ValueError) as exc:
        errors.append(Error(f"An app's vault_token_fields is wrong: {exc}", id="tokenvault.E010"))
    return errors


KEK_RETIRE_GRACE_SECONDS_MIN = 60


@register()
def vault_kek_retire_grace_check(app_configs, **kwargs) -> list[Error]:
    """The KEK retirement grace cannot be configured away: it is the only guard for in-flight tokenizes."""
    if settings.VAULT_KEK_RETIRE_GRACE_SECONDS < KEK_RETIRE_GRACE_SECONDS_MIN:
        message = f"VAULT_KEK_RETIRE_GRACE_SECONDS must be at least {KEK_RETIRE_GRACE_SECONDS_MIN}."
        return [Error(message, id="tokenvault.E020")]
    return []
