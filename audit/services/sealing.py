"""Sealing: committed, unsealed events become a signed, chained checkpoint.

Why this is safe under concurrency without touching the insert path:

* Each event records the id of the transaction that inserted it (`xact_id`).
* A pass takes `horizon = pg_snapshot_xmin(pg_current_snapshot())`: every
  transaction below it has finished. It seals every visible unsealed event
  with `xact_id >= floor`, where floor is the horizon of the last pass that
  drained everything. A row whose transaction commits late (a long request)
  is invisible now and has `xact_id >= horizon`, so a later pass still looks
  at it: it lands in a later batch, never skipped.
* One sealer at a time, cluster-wide, via a PostgreSQL advisory lock.
* Sequence numbers consumed by rolled-back inserts leave gaps no seal refers
  to; the verifier reports them as such.
* Everything here goes through settings.AUDIT_SEALER_DATABASE: the sealer's own
  login, the only one that may INSERT checkpoints, seals and signing keys (the
  web's runtime role may only read them, issue 12). After each run the new
  checkpoints are also appended to a file outside the database
  (`checkpoint_export`), so a rollback of the whole database shows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from audit import integrity
from audit.models import AuditCheckpoint, AuditEvent, AuditSeal, AuditSigningKey
from audit.selectors import drained_floor
from audit.services.checkpoint_export import checkpoints_export
from audit.signing import signing_key

logger = logging.getLogger(__name__)
SEALER_LOCK_KEY = 0x61756469745F7365  # "audit_se": one advisory-lock id for the whole cluster


class _SealerBusy(Exception):
    """Another process holds the sealer lock; this run has nothing to do."""


@dataclass(frozen=True)
class SealResult:
    checkpoints: int
    events: int
    lock_acquired: bool


def _registered_key(using: str) -> tuple[AuditSigningKey, object]:
    private_key = signing_key()
    public = integrity.public_key_bytes(private_key)
    key, _ = AuditSigningKey.objects.using(using).get_or_create(
        key_id=integrity.key_id_for(public), defaults={"public_key": public}
    )
    return key, private_key


def _seal_one_batch(batch_size: int, using: str) -> tuple[int, bool]:
    """Seal up to batch_size events in one transaction. Returns (sealed, drained)."""
    connection = connections[using]
    with transaction.atomic(using=using):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SEALER_LOCK_KEY])
            if not cursor.fetchone()[0]:
                raise _SealerBusy
            cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            horizon = cursor.fetchone()[0]
        previous = AuditCheckpoint.objects.using(using).order_by("-id").first()
        floor = drained_floor(using=using)
        pending = list(
            AuditEvent.objects.using(using)
            .filter(xact_id__gte=floor)
            .alias(sealed=Exists(AuditSeal.objects.filter(event_id=OuterRef("id"))))
            .filter(sealed=False)
            .order_by("id")[:batch_size]
        )
        drained = len(pending) < batch_size
        if not pending:
            return 0, True
        key, private_key = _registered_key(using)
        leaves = [integrity.leaf_hash(integrity.event_document(event)) for event in pending]
        checkpoint = AuditCheckpoint(
            sealed_at=timezone.now(),
            first_event_id=pending[0].id,
            last_event_id=pending[-1].id,
            event_count=len(pending),
            merkle_root=integrity.merkle_root(leaves),
            previous_hash=previous.checkpoint_hash if previous else integrity.GENESIS_HASH,
            signing_key=key,
            drained_below_xact_id=horizon if drained else None,
        )
        # The id is part of the signed message: take it from the sequence first.
        with connection.cursor() as cursor:
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [AuditCheckpoint._meta.db_table])
            checkpoint.id = cursor.fetchone()[0]
        message_fields = integrity.signed_fields(checkpoint)
        checkpoint.checkpoint_hash = integrity.checkpoint_hash(message_fields)
        checkpoint.signature = integrity.sign(private_key, integrity.checkpoint_message(message_fields))
        checkpoint.save(force_insert=True, using=using)
        AuditSeal.objects.using(using).bulk_create(
            AuditSeal(event_id=event.id, checkpoint=checkpoint, leaf_hash=leaf)
            for event, leaf in zip(pending, leaves, strict=True)
        )
    return len(pending), drained


def audit_events_seal(*, batch_size: int | None = None, max_batches: int | None = None) -> SealResult:
    """Seal everything committed and unsealed, in bounded batches."""
    batch_size = batch_size or settings.AUDIT_SEAL_BATCH_SIZE
    max_batches = max_batches or settings.AUDIT_SEAL_MAX_BATCHES_PER_RUN
    using = settings.AUDIT_SEALER_DATABASE
    checkpoints = events = 0
    for _ in range(max_batches):
        try:
            sealed, drained = _seal_one_batch(batch_size, using)
        except _SealerBusy:
            return SealResult(checkpoints, events, lock_acquired=False)
        if sealed:
            checkpoints += 1
            events += sealed
        if drained:
            break
    # Every run, not only one that sealed: it also catches up after a crash between a COMMIT and its export.
    checkpoints_export(using=using)
    if events:
        logger.info("audit events sealed", extra={"checkpoints": checkpoints, "events": events})
    return SealResult(checkpoints, events, lock_acquired=True)
