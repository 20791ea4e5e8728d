"""System checks for configuration invariants a reviewer would otherwise have to remember."""

from __future__ import annotations

import os
import stat
from pathlib import Path

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
WORLD_ACCESS = stat.S_IRWXO


@register(Tags.security, deploy=True)
def process_bind_check(app_configs, **kwargs):
    """Production's web and vault gunicorn listen on a Unix socket only, in a directory other users cannot enter.

    Both sit behind nginx on the same host (the vault behind the mutual-TLS
    terminator, ADR 0018). A TCP listener, even on 127.0.0.1, lets any local
    process call them around nginx: around the client-certificate check for the
    vault, around the proxy whose headers the web trusts. A socket file's mode
    alone is not enough either, so its directory must not be open to others:
    only the process's user and its group (which nginx's user joins). Reads the
    environment gunicorn reads (fintech/gunicorn.conf.py's `binds`), as
    process_keys_check reads the key variables.
    """
    from fintech.process_keys import PROCESSES_ON_A_UNIX_SOCKET, SOCKET_VARIABLE

    process = getattr(settings, "FINTECH_PROCESS", "")
    if process not in PROCESSES_ON_A_UNIX_SOCKET:
        return []
    errors = []
    tcp = [name for name in ("BIND_ADDRESS", "PORT") if os.environ.get(name, "").strip()]
    socket_path = os.environ.get(SOCKET_VARIABLE, "").strip()
    if tcp or not socket_path:
        given = f"{', '.join(tcp)} set" if tcp else "no WEB_UNIX_SOCKET"
        errors.append(
            Error(
                f"The {process} process would listen on TCP ({given}): it must listen on a Unix socket only.",
                hint="Set WEB_UNIX_SOCKET (e.g. /run/fintech-web/web.sock) and neither BIND_ADDRESS nor PORT "
                "(deploy/README.md, nginx in front).",
                id="fintech.E007",
            )
        )
    if socket_path:
        directory = Path(socket_path).parent
        try:
            mode = directory.stat().st_mode
        except OSError as error:
            mode, problem = 0, error.strerror
        else:
            problem = "" if stat.S_ISDIR(mode) else "not a directory"
        if problem:
            errors.append(Error(f"WEB_UNIX_SOCKET's directory {directory} is unusable: {problem}.", id="fintech.E008"))
        elif mode & WORLD_ACCESS:
            errors.append(
                Error(
                    f"WEB_UNIX_SOCKET's directory {directory} is open to every user (mode {stat.S_IMODE(mode):04o}).",
                    hint="Its own runtime directory, mode 0750 (RuntimeDirectoryMode=, deploy/systemd/).",
                    id="fintech.E008",
                )
            )
    return errors


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
