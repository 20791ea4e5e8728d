"""Purge of archived events past retention, whole checkpoints at a time.

Only a prefix of the chain goes, in checkpoint order: `audit.purged` records
how far, and the verifier then accepts missing events up to that checkpoint
(as far as exported archives reach), so the trail keeps verifying.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.models import AuditArchive, AuditCheckpoint, AuditEvent, AuditSeal
from audit.services.archives.export import ArchiveError
from audit.services.events import Actor, audit_event_record
from audit.services.verification import purged_through_checkpoint

PURGE_BATCH_EVENTS = 1000
MAX_PURGE_BATCH_EVENTS = 10_000
PURGE_MAX_BATCHES = 1000
PURGE_PAGE_CHECKPOINTS = 100
PURGE_LOCK_KEY = 0x61756469745F7075  # "audit_pu": one purge at a time, cluster-wide
RETENTION_FLOOR_YEARS = 7  # the trigger's own floor: `now() - interval '7 years'`


@dataclass(frozen=True)
class PurgeResult:
    dry_run: bool
    cutoff: datetime
    checkpoints: int
    events: int
    first_checkpoint_id: int | None
    through_checkpoint_id: int
    stopped_because: str


@dataclass(frozen=True)
class _PurgeBatch:
    checkpoint_ids: list[int]
    event_ids: list[int]


def purge_cutoff(now: datetime) -> datetime:
    """Events strictly older than this may go: the retention setting, and never less than the trigger's 7 years."""
    try:
        floor = now.replace(year=now.year - RETENTION_FLOOR_YEARS)
    except ValueError:  # 29 February
        floor = now.replace(year=now.year - RETENTION_FLOOR_YEARS, day=28)
    return min(now - timedelta(days=settings.AUDIT_RETENTION_DAYS), floor)


def _purge_batch(after: int, cutoff: datetime, batch_size: int) -> tuple[_PurgeBatch, str | None]:
    """The next checkpoints after `after`, in id order, whose events may all go; and why it stopped early.

    A prefix, never a checkpoint further on: `through_checkpoint_id` tells the
    verifier that every checkpoint up to it is purged, so it must be true.
    """
    candidates = list(
        AuditCheckpoint.objects.filter(id__gt=after)
        .order_by("id")
        .values_list("id", "event_count")[:PURGE_PAGE_CHECKPOINTS]
    )
    if not candidates:
        return _PurgeBatch([], []), f"no sealed checkpoint after {after}"
    chosen: list[tuple[int, int]] = []
    for checkpoint_id, event_count in candidates:
        if chosen and sum(count for _, count in chosen) + event_count > batch_size:
            break  # a checkpoint is never split, so one larger than the batch goes alone
        chosen.append((checkpoint_id, event_count))
    archived = list(AuditArchive.objects.values_list("first_checkpoint_id", "last_checkpoint_id"))
    sealed: dict[int, list[int]] = {checkpoint_id: [] for checkpoint_id, _ in chosen}
    for checkpoint_id, event_id in AuditSeal.objects.filter(checkpoint_id__in=sealed).values_list(
        "checkpoint_id", "event_id"
    ):
        sealed[checkpoint_id].append(event_id)
    occurred = dict(
        AuditEvent.objects.filter(id__in=[i for ids in sealed.values() for i in ids]).values_list("id", "occurred_at")
    )
    batch = _PurgeBatch([], [])
    for checkpoint_id, event_count in chosen:
        present = [event_id for event_id in sealed[checkpoint_id] if event_id in occurred]
        if not any(first <= checkpoint_id <= last for first, last in archived):
            return batch, f"checkpoint {checkpoint_id} is in no exported archive"
        if len(present) != event_count:
            return batch, (
                f"checkpoint {checkpoint_id} has {len(present)} of its {event_count} events: run audit_verify"
            )
        if any(occurred[event_id] >= cutoff for event_id in present):
            return batch, f"checkpoint {checkpoint_id} holds events newer than the cutoff"
        batch.checkpoint_ids.append(checkpoint_id)
        batch.event_ids.extend(present)
    return batch, None


def _purge_one_batch(cutoff: datetime, batch_size: int, actor: Actor) -> tuple[_PurgeBatch, str | None]:
    with transaction.atomic(durable=True):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [PURGE_LOCK_KEY])
            if not cursor.fetchone()[0]:
                raise ArchiveError("another audit_purge is running")
        batch, stopped_because = _purge_batch(purged_through_checkpoint(), cutoff, batch_size)
        if not batch.checkpoint_ids:
            return batch, stopped_because
        deleted, _ = AuditEvent.objects.filter(id__in=batch.event_ids).delete()
        if deleted != len(batch.event_ids):
            raise ArchiveError(f"expected to delete {len(batch.event_ids)} events, deleted {deleted}: rolled back")
        # Same transaction as the delete: the verifier learns these are purged exactly when they are.
        audit_event_record(
            event_type="audit.purged",
            outcome=AuditEvent.Outcome.SUCCESS,
            actor=actor,
            payload={
                "first_checkpoint_id": batch.checkpoint_ids[0],
                "through_checkpoint_id": batch.checkpoint_ids[-1],
                "events_deleted": deleted,
                "cutoff": cutoff.isoformat(),
            },
        )
    return batch, stopped_because


def audit_events_purge(
    *, actor: Actor, dry_run: bool = False, batch_size: int = PURGE_BATCH_EVENTS, max_batches: int = PURGE_MAX_BATCHES
) -> PurgeResult:
    """Delete events that are sealed, in an exported archive and past retention, whole checkpoints at a time.

    Walks checkpoints in id order from the last purge and stops at the first
    one that is not archived, not complete, or holds a recent event. Each
    batch (at most `batch_size` events, or one larger checkpoint) commits with
    its own `audit.purged` event. Needs the table owner's connection: the
    runtime role has no DELETE on audit tables, and the trigger lets even the
    owner delete nothing else.
    """
    if not 0 < batch_size <= MAX_PURGE_BATCH_EVENTS:
        raise ArchiveError(f"batch size must be between 1 and {MAX_PURGE_BATCH_EVENTS}")
    cutoff = purge_cutoff(timezone.now())
    checkpoints = events = 0
    first_id: int | None = None
    through = after = purged_through_checkpoint()
    stopped_because = f"stopped after {max_batches} batches"
    for _ in range(max_batches):
        if dry_run:
            batch, reason = _purge_batch(after, cutoff, batch_size)
        else:
            batch, reason = _purge_one_batch(cutoff, batch_size, actor)
        if batch.checkpoint_ids:
            first_id = first_id or batch.checkpoint_ids[0]
            through = after = batch.checkpoint_ids[-1]
            checkpoints += len(batch.checkpoint_ids)
            events += len(batch.event_ids)
        if reason is not None:
            stopped_because = reason
            break
    return PurgeResult(dry_run, cutoff, checkpoints, events, first_id, through, stopped_because)
