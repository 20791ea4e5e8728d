"""Archives of the trail: export sealed checkpoints to a WORM file, verify one offline, purge what is archived.

Format `fintech-audit-archive/1`: one gzip member of JSON Lines.

    {"kind": "header", "format": ..., "created_at", "from", "to", "public_keys": {key_id: base64},
     "first_checkpoint_id", "last_checkpoint_id", "checkpoints", "events"}
    then, for each checkpoint in id order: its events, its seals, the checkpoint itself
    {"kind": "footer", "events": n, "checkpoints": m}

Grouping by checkpoint lets the offline verifier stream a file of any size
while holding one checkpoint's events. The gzip framing is written and read
here, not by the `gzip` module, because that module ignores the header's
timestamp, flags and OS bytes and the inflater ignores the padding bits after
the last deflate code. We write one fixed header whose extra field holds the
sha256 of everything after it, and refuse any other header, so every bit of
the file is checked: the header by comparison, the rest by that digest (and
by gzip's CRC-32 and length), the content again by the seals and signatures.
Any gzip tool still reads the file (`zcat`, Python's `gzip`).

An archive covers every checkpoint in [first_checkpoint_id, last_checkpoint_id]
with every one of their events: the database lets a purge delete exactly the
events whose checkpoint lies in such a range (migration 0002), so a gap in an
archive would be a gap in the trail.

The offline verifier (`audit_archive_verify`) touches neither the ORM nor the
database: it needs only the file.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Exists, Max, Min, OuterRef, Sum
from django.utils import timezone

from audit import integrity
from audit.models import AuditArchive, AuditCheckpoint, AuditEvent, AuditSeal, AuditSigningKey
from audit.services.events import Actor, audit_event_record
from audit.services.verification import (
    TrailVerifier,
    VerificationReport,
    checkpoint_document,
    purged_through_checkpoint,
)

ARCHIVE_FORMAT = "fintech-audit-archive/1"
# RFC 1952 member header: magic, deflate, FEXTRA, mtime 0, "maximum compression", OS unknown, then one
# extra subfield "FA" holding the sha256 of every byte after the header (filled in once the body is written).
GZIP_HEADER_PREFIX = b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x02\xff" + struct.pack("<H2sH", 36, b"FA", 32)
GZIP_HEADER_BYTES = len(GZIP_HEADER_PREFIX) + 32
COMPRESS_LEVEL = 9
READ_CHUNK_BYTES = 64 * 1024
MAX_LINE_BYTES = 16 * 1024 * 1024
EXPORT_PAGE_CHECKPOINTS = 20
PURGE_BATCH_EVENTS = 1000
MAX_PURGE_BATCH_EVENTS = 10_000
PURGE_MAX_BATCHES = 1000
PURGE_PAGE_CHECKPOINTS = 100
PURGE_LOCK_KEY = 0x61756469745F7075  # "audit_pu": one purge at a time, cluster-wide
RETENTION_FLOOR_YEARS = 7  # the trigger's own floor: `now() - interval '7 years'`
HEX_64 = re.compile(r"[0-9a-f]{64}")


class ArchiveError(Exception):
    """An export or purge refused, with a message an operator can act on."""


class ArchiveMalformed(ValueError):
    """The archive's bytes decompress, but its records are not what this format writes."""


class ArchiveCorrupt(Exception):
    """The archive's bytes are damaged: gzip framing, deflate stream, CRC or length."""


# --- Writing --------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    archive: AuditArchive
    path: Path
    checkpoints: int
    events: int
    unsealed_in_range: int


class _ArchiveWriter:
    """Gzip framing around JSON Lines, written by hand: a fixed header whose extra field digests the body."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.deflater = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        self.body = hashlib.sha256()
        self.crc = 0
        self.size = 0
        handle.write(GZIP_HEADER_PREFIX + bytes(32))

    def _emit(self, data: bytes) -> None:
        self.body.update(data)
        self.handle.write(data)

    def write(self, record: dict[str, Any]) -> None:
        data = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)
        self._emit(self.deflater.compress(data))

    def close(self) -> None:
        self._emit(self.deflater.flush())
        self._emit(struct.pack("<II", self.crc, self.size & 0xFFFFFFFF))
        self.handle.seek(len(GZIP_HEADER_PREFIX))
        self.handle.write(self.body.digest())


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _checkpoint_record(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    document = checkpoint_document(checkpoint)
    # The exact string the hash and signature cover, so the verifier recomputes the same bytes.
    sealed_at = json.loads(integrity.checkpoint_message(document))["sealed_at"]
    return {
        "kind": "checkpoint",
        **document,
        "sealed_at": sealed_at,
        "signature": base64.b64encode(document["signature"]).decode(),
        "drained_below_xact_id": checkpoint.drained_below_xact_id,
    }


def _write_checkpoints(
    writer: _ArchiveWriter, first_id: int, last_id: int, progress: Callable[[int], None]
) -> tuple[int, int]:
    """Every checkpoint in [first_id, last_id] with all its events and seals. Returns (checkpoints, events)."""
    checkpoints_written = events_written = 0
    after = first_id - 1
    while True:
        page = list(
            AuditCheckpoint.objects.filter(id__gt=after, id__lte=last_id).order_by("id")[:EXPORT_PAGE_CHECKPOINTS]
        )
        if not page:
            return checkpoints_written, events_written
        seals: dict[int, list[AuditSeal]] = {checkpoint.id: [] for checkpoint in page}
        for seal in AuditSeal.objects.filter(checkpoint_id__in=seals).order_by("event_id"):
            seals[seal.checkpoint_id].append(seal)
        for checkpoint in page:
            event_ids = [seal.event_id for seal in seals[checkpoint.id]]
            events = list(AuditEvent.objects.filter(id__in=event_ids).order_by("id"))
            if len(events) != checkpoint.event_count or len(event_ids) != checkpoint.event_count:
                raise ArchiveError(
                    f"checkpoint {checkpoint.id} seals {checkpoint.event_count} events but {len(events)} are present"
                    " (purged or deleted): run audit_verify; an archive must hold whole checkpoints"
                )
            for event in events:
                writer.write({"kind": "event", **integrity.event_document(event)})
            for seal in seals[checkpoint.id]:
                writer.write(
                    {
                        "kind": "seal",
                        "event_id": seal.event_id,
                        "checkpoint_id": seal.checkpoint_id,
                        "leaf_hash": seal.leaf_hash,
                    }
                )
            writer.write(_checkpoint_record(checkpoint))
            checkpoints_written += 1
            events_written += len(events)
            progress(len(events))
        after = page[-1].id


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(READ_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def audit_archive_export(
    *,
    date_from: date,
    date_to: date,
    actor: Actor,
    output_dir: Path | str | None = None,
    progress_for: Callable[[int], Callable[[int], None]] | None = None,
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
            writer = _ArchiveWriter(handle)
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


# --- Reading and offline verification -------------------------------------------------


@dataclass
class ArchiveVerification:
    path: Path
    sha256: str = ""
    first_checkpoint_id: int | None = None
    last_checkpoint_id: int | None = None
    anchor_hash: str | None = None  # previous_hash of the first checkpoint, when the archive starts mid-chain
    key_ids: list[str] = field(default_factory=list)
    report: VerificationReport = field(default_factory=VerificationReport)


def _archive_lines(path: Path) -> Iterator[bytes]:
    """The archive's lines. The body digest, CRC-32 and length are checked after the last line is read.

    The CRC alone leaves the padding bits after the deflate stream's last code
    unchecked (the inflater ignores them); the header's digest of the body
    covers those too, so no bit of the file goes unchecked.
    """
    with path.open("rb") as handle:
        header = handle.read(GZIP_HEADER_BYTES)
        if len(header) != GZIP_HEADER_BYTES or not header.startswith(GZIP_HEADER_PREFIX):
            raise ArchiveCorrupt("gzip header is not the one this format writes")
        body = hashlib.sha256()
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        crc = size = 0
        pending = b""
        while not inflater.eof:
            chunk = handle.read(READ_CHUNK_BYTES)
            if not chunk:
                raise ArchiveCorrupt("file ends inside the compressed stream (truncated)")
            body.update(chunk)
            try:
                data = inflater.decompress(chunk)
            except zlib.error as error:
                raise ArchiveCorrupt(f"compressed stream damaged ({error})") from None
            crc = zlib.crc32(data, crc)
            size += len(data)
            *lines, pending = (pending + data).split(b"\n")
            if len(pending) > MAX_LINE_BYTES:
                raise ArchiveCorrupt(f"a line longer than {MAX_LINE_BYTES} bytes")
            yield from lines
        rest = handle.read(max(0, 9 - len(inflater.unused_data)))
        body.update(rest)
        trailer = inflater.unused_data + rest
        if len(trailer) != 8:
            raise ArchiveCorrupt("gzip trailer missing, short or followed by extra bytes")
        if struct.unpack("<II", trailer) != (crc, size & 0xFFFFFFFF):
            raise ArchiveCorrupt("CRC-32 or length check failed")
        if body.digest() != header[len(GZIP_HEADER_PREFIX) :]:
            raise ArchiveCorrupt("the body's sha256 does not match the one in the header")
        if pending:
            raise ArchiveCorrupt("the last line is not terminated")


def _record(line: bytes) -> dict[str, Any]:
    record = json.loads(line)
    if not isinstance(record, dict) or not isinstance(record.get("kind"), str):
        raise ArchiveMalformed("a line that is not a record with a kind")
    return record


def _integer(record: dict[str, Any], key: str) -> int:
    value = record.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ArchiveMalformed(f"{record.get('kind')} record: {key} is not an integer")
    return value


def _hex_hash(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not HEX_64.fullmatch(value):
        raise ArchiveMalformed(f"{record.get('kind')} record: {key} is not a sha256 hex digest")
    return value


def _seal(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": _integer(record, "event_id"),
        "checkpoint_id": _integer(record, "checkpoint_id"),
        "leaf_hash": _hex_hash(record, "leaf_hash"),
    }


def _checkpoint(record: dict[str, Any]) -> dict[str, Any]:
    checkpoint = {key: _integer(record, key) for key in ("id", "first_event_id", "last_event_id", "event_count")}
    checkpoint |= {key: _hex_hash(record, key) for key in ("merkle_root", "previous_hash", "checkpoint_hash")}
    for key in ("sealed_at", "key_id", "signature"):
        if not isinstance(record.get(key), str):
            raise ArchiveMalformed(f"checkpoint record: {key} is not a string")
        checkpoint[key] = record[key]
    checkpoint["signature"] = base64.b64decode(checkpoint["signature"], validate=True)
    return checkpoint


def _public_keys(header: dict[str, Any], report: VerificationReport) -> dict[str, bytes]:
    encoded = header.get("public_keys")
    if not isinstance(encoded, dict) or not all(isinstance(value, str) for value in encoded.values()):
        raise ArchiveMalformed("header: public_keys is not a mapping of key id to base64")
    keys = {key_id: base64.b64decode(value, validate=True) for key_id, value in encoded.items()}
    for key_id, public_key in keys.items():
        if integrity.key_id_for(public_key) != key_id:
            report.fail(None, f"public key {key_id}: the key does not match its id")
    return keys


class _ArchiveChecker:
    """Feeds an archive's records, in file order, to a `TrailVerifier` and checks the file's own structure."""

    def __init__(
        self,
        header: dict[str, Any],
        result: ArchiveVerification,
        progress_for: Callable[[int], Callable[[int], None]] | None,
    ) -> None:
        if header["kind"] != "header" or header.get("format") != ARCHIVE_FORMAT:
            raise ArchiveMalformed(f"the first line is not a {ARCHIVE_FORMAT} header")
        self.header = header
        self.result = result
        self.report = result.report
        keys = _public_keys(header, self.report)
        result.key_ids = sorted(keys)
        progress = progress_for(_integer(header, "events")) if progress_for else None
        self.verifier = TrailVerifier(keys, progress=progress)
        self.verifier.report = self.report  # one report for the file's checks and the trail's
        self.events: dict[int, dict[str, Any]] = {}  # of the checkpoint still to come
        self.seals: list[dict[str, Any]] = []
        self.events_seen = self.checkpoints_seen = 0
        self.footer: dict[str, Any] | None = None

    def feed(self, record: dict[str, Any]) -> None:
        if self.footer is not None:
            raise ArchiveMalformed("records after the footer")
        kind = record["kind"]
        if kind == "event":
            self._event({key: value for key, value in record.items() if key != "kind"})
        elif kind == "seal":
            self.seals.append(_seal(record))
        elif kind == "checkpoint":
            self._checkpoint(_checkpoint(record))
        elif kind == "footer":
            self.footer = record
        else:
            raise ArchiveMalformed(f"unknown record kind {kind!r}")

    def _event(self, document: dict[str, Any]) -> None:
        event_id = _integer(document, "id")
        if event_id in self.events:
            self.report.fail(event_id, f"sequence {event_id}: appears twice in the archive")
        self.events[event_id] = document
        self.events_seen += 1

    def _checkpoint(self, checkpoint: dict[str, Any]) -> None:
        number, result = checkpoint["id"], self.result
        if self.checkpoints_seen == 0:
            result.first_checkpoint_id = number
            if checkpoint["previous_hash"] != integrity.GENESIS_HASH:
                # The archive starts mid-chain: anchor on the first checkpoint's own (signed) link.
                # The previous archive's last checkpoint_hash must equal anchor_hash.
                self.verifier.previous_hash = result.anchor_hash = checkpoint["previous_hash"]
        elif number <= (result.last_checkpoint_id or 0):
            raise ArchiveMalformed(f"checkpoint {number} is out of order")
        result.last_checkpoint_id = number
        seals = []
        for seal in self.seals:
            if seal["checkpoint_id"] == number:
                seals.append(seal)
            else:
                self.report.fail(
                    seal["event_id"],
                    f"sequence {seal['event_id']}: seal names checkpoint {seal['checkpoint_id']} "
                    f"but is filed under checkpoint {number}",
                )
        self._unsealed(set(self.events) - {seal["event_id"] for seal in seals})
        self.verifier.check_checkpoint(checkpoint, seals, self.events)
        self.checkpoints_seen += 1
        self.events, self.seals = {}, []

    def _unsealed(self, event_ids: set[int]) -> None:
        for event_id in sorted(event_ids):
            self.report.fail(event_id, f"sequence {event_id}: in the archive but not sealed by an archived checkpoint")

    def finish(self) -> None:
        report, result = self.report, self.result
        self._unsealed(set(self.events))
        for seal in self.seals:
            report.fail(seal["event_id"], f"sequence {seal['event_id']}: seal after the last archived checkpoint")
        if self.footer is None:
            report.fail(None, "archive truncated: no footer")
            return
        counted = (self.events_seen, self.checkpoints_seen)
        if (_integer(self.footer, "events"), _integer(self.footer, "checkpoints")) != counted:
            report.fail(
                None,
                f"footer counts {self.footer['events']} events and {self.footer['checkpoints']} "
                f"checkpoints; the archive holds {counted[0]} and {counted[1]}",
            )
        header = self.header
        expected = (header.get("first_checkpoint_id"), header.get("last_checkpoint_id"), header.get("events"))
        if expected != (result.first_checkpoint_id, result.last_checkpoint_id, self.events_seen):
            report.fail(None, "the header's checkpoint range or event count does not match the archive's content")


def _verify_records(
    lines: Iterable[bytes], result: ArchiveVerification, progress_for: Callable[[int], Callable[[int], None]] | None
) -> None:
    lines = iter(lines)
    checker = _ArchiveChecker(_record(next(lines, b'{"kind": "none"}')), result, progress_for)
    for line in lines:
        checker.feed(_record(line))
    checker.finish()


def audit_archive_verify(
    path: Path | str, *, progress_for: Callable[[int], Callable[[int], None]] | None = None
) -> ArchiveVerification:
    """Verify an archive file on its own: no ORM, no database, only the file.

    Checks every byte (gzip framing, CRC, length), every checkpoint's hash,
    signature and chain link, every seal against its root and every event
    against its seal, the footer's counts, and that each archived event is
    sealed by an archived checkpoint. `progress_for(total_events)` returns
    the per-checkpoint progress callback.
    """
    path = Path(path)
    result = ArchiveVerification(path=path)
    try:
        result.sha256 = _file_sha256(path)
    except OSError as error:
        result.report.fail(None, f"archive unreadable: {error}")
        return result
    with contextlib.closing(_archive_lines(path)) as lines:
        try:
            _verify_records(lines, result, progress_for)
        except ArchiveCorrupt as error:
            result.report.fail(None, f"archive corrupt: {error}")
        except ValueError as error:  # JSON, UTF-8, base64 and ArchiveMalformed
            # Damage usually shows first as a record that does not parse: read on, so the report says so.
            try:
                for _ in lines:
                    pass
            except ArchiveCorrupt as corrupt:
                result.report.fail(None, f"archive corrupt: {corrupt} (first seen as: {error})")
            else:
                result.report.fail(None, f"archive malformed: {error}")
    return result


# --- Purging --------------------------------------------------------------------------


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
