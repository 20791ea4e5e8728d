"""Fixtures for the accounts tests."""

from __future__ import annotations

import uuid

import pytest
import redis as redis_lib


@pytest.fixture
def field_keys(tmp_path, settings):
    """A fresh key ring for the encrypted identity fields, per test, generated on first use."""
    settings.FIELD_KEK_DIR = str(tmp_path / "field-kek")
    settings.FIELD_KEK_GENERATE = True


@pytest.fixture
def isolated_throttle(settings):
    """Own Redis key prefix per test for the login throttle; its keys are deleted afterwards."""
    prefix = f"fintech-test-login-{uuid.uuid4().hex[:12]}"
    settings.REDIS_KEY_PREFIX = prefix
    settings.LOGIN_ATTEMPTS_PER_ACCOUNT = "5/15m"
    settings.LOGIN_ATTEMPTS_PER_ADDRESS = "50/15m"
    cleanup = redis_lib.Redis.from_url(settings.REDIS_URL)
    yield prefix
    for key in cleanup.scan_iter(f"{prefix}:*", count=1000):
        cleanup.delete(key)
    cleanup.close()
