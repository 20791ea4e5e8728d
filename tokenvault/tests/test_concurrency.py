"""Convergent tokenization, and reaping against it, under real concurrency: real threads, real PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from audit.models import AuditEvent
from audit.services.events import Actor
from tokenvault.models import VaultRecord
from tokenvault.services import vault_shred_not_issued_since, vault_tokenize
from tokenvault.tests.conftest import VAULT_DATABASES, VISA

THREADS = 8
NATIONAL_ID = "QQ123456C"


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


ROUNDS = 4


def _reap_race_round(*, stale: str, actor: Actor) -> tuple[list[str], list[bool]]:
    """Half the threads re-issue `stale` convergently, half reap it; (tokens issued, shred results)."""
    reaper = Actor.system("vault_reaper")
    cutoff = timezone.now() - timedelta(hours=24)
    barrier = threading.Barrier(THREADS)
    issued: list[str] = []
    shredded: list[bool] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def reissue() -> None:
        barrier.wait(timeout=10)
        token = vault_tokenize(token_type="national_id", value=NATIONAL_ID, convergent=True, actor=actor).token
        with lock:
            issued.append(token)

    def reap() -> None:
        barrier.wait(timeout=10)
        done = vault_shred_not_issued_since(token=stale, actor=reaper, not_issued_since=cutoff)
        with lock:
            shredded.append(done)

    def run(work) -> None:
        try:
            work()
        except BaseException as error:  # reported to the main thread below
            with lock:
                errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(reissue if n % 2 else reap,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    return issued, shredded


@pytest.mark.django_db(databases=VAULT_DATABASES, transaction=True)
def test_reaping_races_convergent_reissue_and_never_shreds_a_token_just_handed_out(provider, actor):
    """Half the threads re-issue a stale convergent token, half reap it with a cutoff older than any re-issue.

    Whoever takes the row lock first wins: the re-issue (the reap skips it) or
    the shred (the re-issuers get a fresh token). Either way, no token a
    tokenize returned may be shredded afterwards.
    """
    stale = vault_tokenize(token_type="national_id", value=NATIONAL_ID, convergent=True, actor=actor).token
    for _round in range(ROUNDS):
        aged = timezone.now() - timedelta(hours=48)
        assert VaultRecord.objects.using("vault").filter(token=stale).update(last_issued_at=aged) == 1

        issued, shredded = _reap_race_round(stale=stale, actor=actor)

        assert len(issued) == THREADS // 2
        assert len(set(issued)) == 1  # the re-issuers agree on one token, the stale one or a fresh one
        assert VaultRecord.objects.using("vault").get(token=issued[0]).shredded_at is None
        assert shredded.count(True) == (0 if issued[0] == stale else 1)
        assert AuditEvent.objects.filter(event_type="vault.shredded", object_id=stale).count() == shredded.count(True)
        stale = issued[0]
