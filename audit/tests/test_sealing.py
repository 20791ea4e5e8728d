"""Sealing under real concurrency: 16 writer threads, a running sealer, long and rolled-back transactions."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from audit.models import AuditCheckpoint, AuditEvent, AuditSeal
from audit.services.sealing import audit_events_seal
from audit.services.verification import audit_trail_verify
from audit.tests.factories import record_event
from conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


class Rollback(Exception):
    pass


def test_sealing_chains_signed_checkpoints_over_every_event():
    for n in range(25):
        record_event(n)

    result = audit_events_seal(batch_size=10)

    assert (result.checkpoints, result.events) == (3, 25)
    checkpoints = list(AuditCheckpoint.objects.order_by("id"))
    assert [c.event_count for c in checkpoints] == [10, 10, 5]
    assert checkpoints[1].previous_hash == checkpoints[0].checkpoint_hash
    assert checkpoints[2].drained_below_xact_id is not None
    report = audit_trail_verify()
    assert report.passed, report.problems
    assert (report.checkpoints_checked, report.events_checked, report.unsealed_events) == (3, 25, 0)


def test_a_second_run_with_nothing_new_writes_no_checkpoint():
    record_event()
    audit_events_seal()

    assert audit_events_seal().events == 0
    assert AuditCheckpoint.objects.count() == 1


def test_only_one_sealer_runs_at_a_time():
    record_event()
    holder_ready, release = threading.Event(), threading.Event()

    def hold_the_lock():
        from audit.services.sealing import SEALER_LOCK_KEY

        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEALER_LOCK_KEY])
            holder_ready.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    holder_ready.wait(10)
    try:
        busy = audit_events_seal()
    finally:
        release.set()
        holder.join(10)

    assert (busy.lock_acquired, busy.events) == (False, 0)
    assert audit_events_seal().events == 1


def test_sixteen_writers_with_a_running_sealer_lose_nothing():
    """Long transactions commit after later rows were sealed; rollbacks leave gaps; nothing is skipped."""
    stop = threading.Event()
    committed: list[int] = []
    rolled_back: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    late: dict[str, int] = {}

    def guarded(work):
        def run(*args):
            try:
                work(*args)
            except BaseException as exc:  # surfaced by the assertion below
                errors.append(exc)
            finally:
                connection.close()

        return run

    @guarded
    def sealer():
        while not stop.is_set():
            audit_events_seal(batch_size=40)
            time.sleep(0.005)

    @guarded
    def writer(index: int):
        for step in range(25):
            if step % 8 == 3:  # rolled back: consumes a sequence number, leaves no row
                try:
                    with transaction.atomic():
                        rolled = record_event(step, object_id=f"w{index}")
                        raise Rollback
                except Rollback:
                    with lock:
                        rolled_back.append(rolled.id)
            elif step % 8 == 5 and index % 4 == 0:  # a long transaction
                with transaction.atomic():
                    event = record_event(step, object_id=f"w{index}")
                    time.sleep(0.15)
                with lock:
                    committed.append(event.id)
            else:
                event = record_event(step, object_id=f"w{index}")
                with lock:
                    committed.append(event.id)

    @guarded
    def late_writer():
        """Inserts, then commits only after a row with a higher sequence number is sealed."""
        with transaction.atomic():
            event = record_event(object_id="late")
            late["id"] = event.id
            wait_until(lambda: AuditSeal.objects.filter(event_id__gt=event.id).exists(), timeout_seconds=30)
        with lock:
            committed.append(event.id)

    threads = [threading.Thread(target=sealer), threading.Thread(target=late_writer)]
    threads += [threading.Thread(target=writer, args=(i,)) for i in range(16)]
    for thread in threads[1:]:
        thread.start()
    wait_until(lambda: "id" in late, timeout_seconds=10)
    threads[0].start()
    for thread in threads[1:]:
        thread.join(60)
    stop.set()
    threads[0].join(30)
    assert not errors, errors

    while audit_events_seal(batch_size=40).events:
        pass

    seals = dict(AuditSeal.objects.values_list("event_id", "checkpoint_id"))
    assert sorted(seals) == sorted(committed)  # every committed row sealed exactly once (event_id is the key)
    assert not set(rolled_back) & set(AuditEvent.objects.values_list("id", flat=True))
    assert len(rolled_back) == 16 * 3  # steps 3, 11 and 19 of each writer
    later_rows_checkpoint = min(cp for event_id, cp in seals.items() if event_id > late["id"])
    assert seals[late["id"]] > later_rows_checkpoint  # sealed in a later batch, not skipped
    report = audit_trail_verify()
    assert report.passed, report.problems
    assert report.events_checked == len(committed)
    assert report.unsealed_events == 0
