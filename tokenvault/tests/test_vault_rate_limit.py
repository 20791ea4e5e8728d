"""The vault role's request limiter (issue 13, ADR 0017): its own Redis login and namespace, every internal call.

Against the real vault process (gunicorn, `fintech.settings.vault`) and the real Redis, with the ACL
user `scripts/services.py up` creates. Cost: about 1 s (the vault process is shared by the session).
"""

from __future__ import annotations

import os
import uuid

import pytest
import redis
import requests
from django.conf import settings

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "vault"])


def test_the_vault_login_may_touch_only_the_vaults_keys():
    url = os.environ.get("VAULT_REDIS_URL", "")
    if not url:
        pytest.skip("no vault Redis login here (VAULT_REDIS_URL unset: the Redis would not create ACL users)")
    vault = redis.Redis.from_url(url, socket_connect_timeout=1)
    probe = uuid.uuid4().hex
    assert vault.set(f"{settings.REDIS_KEY_PREFIX}-vault:probe:{probe}", "1", ex=10)
    for foreign in (f"{settings.REDIS_KEY_PREFIX}:rl:probe:{probe}", f"_kombu.binding.{probe}"):
        with pytest.raises(redis.exceptions.NoPermissionError):
            vault.set(foreign, "1", ex=10)
    with pytest.raises(redis.exceptions.NoPermissionError):
        vault.flushall()


def test_every_internal_call_is_counted_before_its_credential_is_checked(vault_live):
    answer = requests.post(f"{vault_live.url}/internal/v1/detokenize", json={}, timeout=5)
    assert answer.status_code in (401, 403)  # no service credential: refused by the view, after the limiter
    assert answer.headers["RateLimit-Policy"].startswith('"vault_internal.address";q=30000;w=60')
    assert answer.headers["RateLimit"].startswith('"vault_internal.address";r=')
    # A bucket back to full has no key (GCRA keeps one only while it is below full): a 401/403, not a 503,
    # is what shows the vault's own Redis login answered (its limiter fails closed).
