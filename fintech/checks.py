"""System checks for configuration invariants a reviewer would otherwise have to remember."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register


@register()
def audit_retention_check(app_configs, **kwargs):
    errors = []
    minimum = 7 * 365
    if getattr(settings, "AUDIT_RETENTION_DAYS", minimum) < minimum:
        errors.append(
            Error(
                f"AUDIT_RETENTION_DAYS must be at least {minimum} (7 years).",
                id="fintech.E001",
            )
        )
    return errors


@register(Tags.security, deploy=True)
def process_keys_check(app_configs, **kwargs):
    """The running process holds only its role's keys (fintech/process_keys.py), in its settings and environment.

    Settings: no key outside the role's list is set (a path, a loaded key, a
    value, or permission to generate one). Environment: no variable carrying
    such a key is set either, even if the settings ignore it, because the
    process could still read it (and a deployment that gives it one is wrong).
    """
    from fintech.process_keys import (
        KEYS,
        PROCESS_KEYS,
        PROCESS_VARIABLE,
        PROCESSES_WITHOUT_DATABASE,
        key_holders,
        keys_held,
        keys_in_environment,
    )

    process = getattr(settings, "FINTECH_PROCESS", "")
    if process not in PROCESS_KEYS:
        message = f"{PROCESS_VARIABLE} must name this process: one of {', '.join(PROCESS_KEYS)}, not {process!r}."
        return [Error(message, hint="Every production process sets it (deploy/README.md).", id="fintech.E002")]
    allowed = PROCESS_KEYS[process]
    errors = []
    for key, holding in sorted(keys_held(settings).items()):
        if key not in allowed:
            errors.append(
                Error(
                    f"The {process} process's settings hold {key} ({', '.join(holding)}): {KEYS[key].what}.",
                    hint=f"Only {', '.join(key_holders(key)) or 'no process'} may hold it (fintech/process_keys.py).",
                    id="fintech.E003",
                )
            )
    for key, variables in sorted(keys_in_environment().items()):
        if key not in allowed:
            errors.append(
                Error(
                    f"The {process} process's environment carries {key} ({', '.join(variables)}).",
                    hint=f"Give it only to {', '.join(key_holders(key)) or 'no process'} (deploy/README.md).",
                    id="fintech.E004",
                )
            )
    if process in PROCESSES_WITHOUT_DATABASE:
        held = [alias for alias, config in settings.DATABASES.items() if config.get("ENGINE") != DUMMY_ENGINE]
        if held:
            errors.append(Error(f"The {process} process holds databases {held}; it needs none.", id="fintech.E005"))
    return errors


DUMMY_ENGINE = "django.db.backends.dummy"


@register()
def rate_limit_policies_check(app_configs, **kwargs):
    """The rate-limit table parses (ADR 0017): a typo in RATE_LIMIT_POLICIES_JSON stops the process at start,
    not at its first request."""
    from django.core.exceptions import ImproperlyConfigured

    from fintech.api_limits import policies_table

    try:
        policies_table()
    except ImproperlyConfigured as error:
        return [Error(str(error), id="fintech.E006")]
    return []
