"""Convergent tokenization under real concurrency: real threads, real PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from audit.models import AuditEvent
from tokenvault.models import VaultRecord
from tokenvault.services import vault_tokenize
from tokenvault.tests.conftest import VAULT_DATABASES, VISA

THREADS = 8


@pytest.mark.django_db(databases=VAULT_DATABASES, transaction=True)
def test_eight_threads_tokenizing_one_value_convergently_get_one_token(provider, actor):
    barrier = threading.Barrier(THREADS)
    results: list[tuple[str, bool]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def tokenize() -> None:
        try:
            barrier.wait(timeout=10)
            result = vault_tokenize(token_type="card", value=VISA, convergent=True, actor=actor)
            with lock:
                results.append((result.token, result.created))
        except BaseException as error:  # reported to the main thread below
            with lock:
                errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=tokenize) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(results) == THREADS
    assert len({token for token, _created in results}) == 1
    assert sorted(created for _token, created in results) == [False] * (THREADS - 1) + [True]
    assert VaultRecord.objects.using("vault").count() == 1
    assert AuditEvent.objects.filter(event_type="vault.tokenized").count() == 1
