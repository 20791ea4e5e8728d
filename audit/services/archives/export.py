"""Export of sealed checkpoints to a write-once archive file.

An archive covers every checkpoint in [first_checkpoint_id, last_checkpoint_id]
with every one of their events: the database lets a purge delete exactly the
events whose checkpoint lies in such a range (migration 0002), so a gap in an
archive would be a gap in the trail.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, Max, Min, OuterRef, Sum
from django.utils import timezone

from audit.models import AuditArchive, AuditCheckpoint, AuditEvent, AuditSeal, AuditSigningKey
from audit.services.archives.format import ARCHIVE_FORMAT, ArchiveWriter, checkpoint_record
from audit.services.archives.offline import ProgressFor, audit_archive_verify
from audit.services.events import Actor, audit_event_record
from audit.services.verification import checkpoint_document, database_checkpoints

EXPORT_PAGE_CHECKPOINTS = 20


class ArchiveError(Exception):
    """An export or purge refused, with a message an operator can act on."""


@dataclass(frozen=True)
class ExportResult:
    archive: AuditArchive
    path: Path
    checkpoints: int
    events: int
    unsealed_in_range: int


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _write_checkpoints(
    writer: ArchiveWriter, first_id: int, last_id: int, progress: Callable[[int], None]
) -> tuple[int, int]:
    """Every checkpoint in [first_id, last_id] with all its events and seals. Returns (checkpoints, events)."""
    checkpoints_written = events_written = 0
    pages = database_checkpoints(after_id=first_id - 1, through_id=last_id, page_size=EXPORT_PAGE_CHECKPOINTS)
    for checkpoint, seals, page_events in pages:
        events = [page_events[seal["event_id"]] for seal in seals if seal["event_id"] in page_events]
        if len(events) != checkpoint.event_count or len(seals) != checkpoint.event_count:
            raise ArchiveError(
                f"checkpoint {checkpoint.id} seals {checkpoint.event_count} events but {len(events)} are present"
                " (purged or deleted): run audit_verify; an archive must hold whole checkpoints"
            )
        for event in events:
            writer.write({"kind": "event", **event})
        for seal in seals:
            writer.write({"kind": "seal", **seal})
        writer.write(
            checkpoint_record(checkpoint_document(checkpoint), drained_below_xact_id=checkpoint.drained_below_xact_id)
        )
        checkpoints_written += 1
        events_written += len(events)
        progress(len(events))
    return checkpoints_written, events_written


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def audit_archive_export(
    *,
    date_from: date,
    date_to: date,
    actor: Actor,
    output_dir: Path | str | None = None,
    progress_for: ProgressFor | None = None,
) -> ExportResult:
    """Write the checkpoints holding any event that occurred in [date_from, date_to) (UTC) to a new archive.

    Whole checkpoints only, and every checkpoint between the first and the last
    selected, so that roots recompute and the archive's range is gap-free. The
    file is created exclusively (never overwritten), fsync'd, made read-only,
    verified by reading it back, and only then registered as an AuditArchive
    together with an `audit.exported` event (one transaction).
    """
    if date_from >= date_to:
        raise ArchiveError(f"--from ({date_from}) must be before --to ({date_to})")
    start, end = _day_start(date_from), _day_start(date_to)
    in_range = AuditEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
    bounds = AuditSeal.objects.filter(event_id__in=in_range.values("id")).aggregate(
        first=Min("checkpoint_id"), last=Max("checkpoint_id")
    )
    if bounds["first"] is None:
        raise ArchiveError(f"no sealed audit event occurred in [{date_from}, {date_to}): nothing to export")
    first_id, last_id = bounds["first"], bounds["last"]
    unsealed = (
        in_range.alias(sealed=Exists(AuditSeal.objects.filter(event_id=OuterRef("id")))).filter(sealed=False).count()
    )
    selected = AuditCheckpoint.objects.filter(id__gte=first_id, id__lte=last_id)
    totals = selected.aggregate(checkpoints=Count("id"), events=Sum("event_count"))
    public_keys = {
        key.key_id: base64.b64encode(bytes(key.public_key)).decode()
        for key in AuditSigningKey.objects.filter(key_id__in=selected.values("signing_key_id"))
    }

    now = timezone.now()
    file_name = (
        f"audit-{date_from:%Y%m%d}-{date_to:%Y%m%d}-checkpoints-{first_id}-{last_id}"
        f"-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}.jsonl.gz"
    )
    directory = Path(output_dir or settings.AUDIT_ARCHIVE_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / file_name
    if AuditArchive.objects.filter(file_name=file_name).exists():
        raise ArchiveError(f"an archive named {file_name} is already registered: archives are never overwritten")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    except FileExistsError:
        raise ArchiveError(f"{path} already exists: archives are never overwritten") from None

    progress = progress_for(totals["events"]) if progress_for else (lambda count: None)
    try:
        with os.fdopen(fd, "wb") as handle:
            writer = ArchiveWriter(handle)
            writer.write(
                {
                    "kind": "header",
                    "format": ARCHIVE_FORMAT,
                    "created_at": now.isoformat(),
                    "from": date_from.isoformat(),
                    "to": date_to.isoformat(),
                    "public_keys": public_keys,
                    "first_checkpoint_id": first_id,
                    "last_checkpoint_id": last_id,
                    "checkpoints": totals["checkpoints"],
                    "events": totals["events"],
                }
            )
            checkpoints, events = _write_checkpoints(writer, first_id, last_id, progress)
            writer.write({"kind": "footer", "events": events, "checkpoints": checkpoints})
            writer.close()
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(path, 0o444)  # the creating mode is filtered by the umask; say it explicitly
        _fsync_directory(directory)
        check = audit_archive_verify(path)
        if not check.report.passed:
            raise ArchiveError(f"the archive just written does not verify: {check.report.problems[:5]}")
        with transaction.atomic(durable=True):
            archive = AuditArchive.objects.create(
                file_name=file_name,
                sha256=check.sha256,
                first_checkpoint_id=first_id,
                last_checkpoint_id=last_id,
                event_count=events,
                created_by=actor.staff or actor.user or actor.client,
            )
            audit_event_record(
                event_type="audit.exported",
                outcome=AuditEvent.Outcome.SUCCESS,
                actor=actor,
                object_type="audit_archive",
                object_id=str(archive.id),
                payload={
                    "file_name": file_name,
                    "sha256": check.sha256,
                    "first_checkpoint_id": first_id,
                    "last_checkpoint_id": last_id,
                    "events": events,
                    "checkpoints": checkpoints,
                    "from": date_from.isoformat(),
                    "to": date_to.isoformat(),
                },
            )
    except BaseException:
        # Created by us (O_EXCL) and not registered: a half-written or unrecorded file must not pass for an archive.
        path.unlink(missing_ok=True)
        raise
    return ExportResult(archive, path, checkpoints, events, unsealed)
