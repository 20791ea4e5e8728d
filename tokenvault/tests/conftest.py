"""Fixtures for vault tests: a throw-away key directory per test, and an actor."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from audit.services.events import Actor
from tokenvault.keys import LocalFileKeyProvider, vault_key_provider

VAULT_DATABASES = ["default", "vault"]
# Test card numbers published by the schemes; none is a real account.
VISA = "4111111111111111"
MASTERCARD = "5555555555554444"
MASTERCARD_2_SERIES = "2221000000000009"
AMEX = "378282246310005"


@pytest.fixture
def key_directory(tmp_path, settings):
    """Point the vault at a fresh key directory where keys may be generated."""
    directory = tmp_path / "vault-kek"
    settings.VAULT_KEK_DIR = str(directory)
    settings.VAULT_KEK_GENERATE = True
    return directory


@pytest.fixture
def provider(key_directory) -> LocalFileKeyProvider:
    provider = vault_key_provider()
    assert isinstance(provider, LocalFileKeyProvider)
    return provider


@pytest.fixture
def actor() -> Actor:
    return Actor(staff="staff_test_1")


def backdate_rotation(key_directory: Path, version: int, seconds: float) -> None:
    """Record that KEK `version` became current `seconds` ago, so retiring the one before it sees that age."""
    (key_directory / f"kek-v{version:06d}.since").write_text(f"{time.time() - seconds:.0f}\n")


def past_retire_grace(provider: LocalFileKeyProvider, version: int) -> None:
    """Let KEK `version - 1` be retired now: `version` became current longer ago than the grace period."""
    from django.conf import settings

    backdate_rotation(provider.directory, version, settings.VAULT_KEK_RETIRE_GRACE_SECONDS + 1)


GRANT_OPERATOR = "5f0c8d6e-3b1a-4c2d-9e8f-7a6b5c4d3e2f"  # a staff public id, as the API role would name it


def staff_grant_token(command: str, args: dict | None = None, *, expires_in_seconds: int = 600, grant_id=None) -> str:
    """What `vault_grant` in the API role prints: a signed single-use grant for one run of `command`."""
    import uuid
    from datetime import UTC, datetime, timedelta

    from fintech.staff_grants import staff_grant_sign

    return staff_grant_sign({
        "command": command,
        "args": args or {},
        "operator": GRANT_OPERATOR,
        "approved_by": "",
        "approval": "",
        "grant_id": str(grant_id or uuid.uuid4()),
        "expires_at": (datetime.now(UTC) + timedelta(seconds=expires_in_seconds)).isoformat(),
    })  # fmt: skip


def grant_stdin(*command_args: str):
    """stdin carrying a fresh grant for `call_command(*command_args)` (the version argument of a retire)."""
    import io

    command = command_args[0]
    args = {"version": int(command_args[1])} if command == "vault_retire_key" else {}
    return io.StringIO(staff_grant_token(command, args) + "\n")
