"""Offline verification of an archive: only the file, no ORM, no database.

An archive outlives the database rows it holds (they are purged after the
retention period), so it must prove itself with what it carries: its seals
and checkpoints, checked by the same `TrailVerifier` that `audit_verify` runs
over the database, under the public keys configured outside it
(AUDIT_VERIFY_KEY_PATHS: `audit_verify --archive` passes them), never only
the keys its own header lists.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from audit import integrity
from audit.services.archives.format import (
    ARCHIVE_FORMAT,
    READ_CHUNK_BYTES,
    ArchiveCorrupt,
    ArchiveMalformed,
    archive_lines,
    checkpoint_from_record,
    event_from_record,
    integer_field,
    parse_record,
    public_keys_from_header,
    seal_from_record,
)
from audit.services.verification import TrailVerifier, VerificationReport

# Given the total number of events, returns the callback advanced once per checkpoint.
ProgressFor = Callable[[int], Callable[[int], None]]


@dataclass
class ArchiveVerification:
    path: Path
    sha256: str = ""
    first_checkpoint_id: int | None = None
    last_checkpoint_id: int | None = None
    anchor_hash: str | None = None  # previous_hash of the first checkpoint, when the archive starts mid-chain
    last_checkpoint_hash: str | None = None  # compared with the checkpoint export (audit_verify --archive)
    key_ids: list[str] = field(default_factory=list)
    report: VerificationReport = field(default_factory=VerificationReport)


class _ArchiveChecker:
    """Feeds an archive's records, in file order, to a `TrailVerifier` and checks the file's own structure.

    The verifier is made at the first checkpoint, because only that record
    tells where the archive's chain starts.
    """

    def __init__(
        self,
        header: dict[str, Any],
        result: ArchiveVerification,
        progress_for: ProgressFor | None,
        trusted_keys: dict[str, bytes] | None = None,
    ) -> None:
        if header["kind"] != "header" or header.get("format") != ARCHIVE_FORMAT:
            raise ArchiveMalformed(f"the first line is not a {ARCHIVE_FORMAT} header")
        self.header = header
        self.result = result
        self.report = result.report
        self.public_keys = public_keys_from_header(header)
        for key_id, public_key in self.public_keys.items():
            if integrity.key_id_for(public_key) != key_id:
                self.report.fail(None, f"public key {key_id}: the key does not match its id")
        result.key_ids = sorted(self.public_keys)
        if trusted_keys is not None:
            # The header says which keys signed; whoever wrote the file chose it. Only the configured keys count.
            for key_id in sorted(set(self.public_keys) - set(trusted_keys)):
                self.report.fail(None, f"public key {key_id}: not among the trusted keys (AUDIT_VERIFY_KEY_PATHS)")
            self.public_keys = {key_id: key for key_id, key in trusted_keys.items() if key_id in self.public_keys}
        self.progress = progress_for(integer_field(header, "events")) if progress_for else None
        self.verifier: TrailVerifier | None = None
        self.events: dict[int, dict[str, Any]] = {}  # of the checkpoint still to come
        self.seals: list[dict[str, Any]] = []
        self.events_seen = self.checkpoints_seen = 0
        self.footer: dict[str, Any] | None = None

    def feed(self, record: dict[str, Any]) -> None:
        if self.footer is not None:
            raise ArchiveMalformed("records after the footer")
        kind = record["kind"]
        if kind == "event":
            self._event(event_from_record(record))
        elif kind == "seal":
            self.seals.append(seal_from_record(record))
        elif kind == "checkpoint":
            self._checkpoint(checkpoint_from_record(record))
        elif kind == "footer":
            self.footer = record
        else:
            raise ArchiveMalformed(f"unknown record kind {kind!r}")

    def _event(self, document: dict[str, Any]) -> None:
        event_id = document["id"]
        if event_id in self.events:
            self.report.fail(event_id, f"sequence {event_id}: appears twice in the archive")
        self.events[event_id] = document
        self.events_seen += 1

    def _checkpoint(self, checkpoint: dict[str, Any]) -> None:
        number, result = checkpoint["id"], self.result
        if self.verifier is None:
            result.first_checkpoint_id = number
            anchor = checkpoint["previous_hash"]
            if anchor != integrity.GENESIS_HASH:
                # The archive starts mid-chain: anchor on the first checkpoint's own (signed) link.
                # The previous archive's last checkpoint_hash must equal anchor_hash.
                result.anchor_hash = anchor
            self.verifier = TrailVerifier(
                self.public_keys, previous_hash=anchor, report=self.report, progress=self.progress
            )
        elif number <= (result.last_checkpoint_id or 0):
            raise ArchiveMalformed(f"checkpoint {number} is out of order")
        result.last_checkpoint_id = number
        result.last_checkpoint_hash = checkpoint.get("checkpoint_hash")
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
        self.verifier.check_event_order(_times_in_id_order(self.events))
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
        if (integer_field(self.footer, "events"), integer_field(self.footer, "checkpoints")) != counted:
            report.fail(
                None,
                f"footer counts {self.footer['events']} events and {self.footer['checkpoints']} "
                f"checkpoints; the archive holds {counted[0]} and {counted[1]}",
            )
        header = self.header
        expected = (header.get("first_checkpoint_id"), header.get("last_checkpoint_id"), header.get("events"))
        if expected != (result.first_checkpoint_id, result.last_checkpoint_id, self.events_seen):
            report.fail(None, "the header's checkpoint range or event count does not match the archive's content")


def _times_in_id_order(events: dict[int, dict[str, Any]]) -> list[tuple[int, datetime]]:
    """One checkpoint's events as (id, time), in id order: within a checkpoint, too, time never goes backwards.

    A time that does not parse is left to the seal check (the leaf hash covers it).
    """
    times = []
    for event_id in sorted(events):
        try:
            occurred_at = datetime.fromisoformat(events[event_id]["occurred_at"])
        except (KeyError, TypeError, ValueError):
            continue
        if occurred_at.tzinfo is not None:
            times.append((event_id, occurred_at))
    return times


def _verify_records(
    lines: Iterable[bytes],
    result: ArchiveVerification,
    progress_for: ProgressFor | None,
    trusted_keys: dict[str, bytes] | None,
) -> None:
    lines = iter(lines)
    checker = _ArchiveChecker(parse_record(next(lines, b'{"kind": "none"}')), result, progress_for, trusted_keys)
    for line in lines:
        checker.feed(parse_record(line))
    checker.finish()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(READ_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def audit_archive_verify(
    path: Path | str, *, progress_for: ProgressFor | None = None, trusted_keys: dict[str, bytes] | None = None
) -> ArchiveVerification:
    """Verify an archive file on its own: no ORM, no database, only the file.

    Checks every byte (gzip framing, CRC, length), every checkpoint's hash,
    signature and chain link, every seal against its root and every event
    against its seal, the footer's counts, and that each archived event is
    sealed by an archived checkpoint. `progress_for(total_events)` returns
    the per-checkpoint progress callback. With `trusted_keys` ({key id: raw
    public key}, what `audit_verify` passes from AUDIT_VERIFY_KEY_PATHS) a
    checkpoint verifies only under one of them, whatever the header lists.
    """
    path = Path(path)
    result = ArchiveVerification(path=path)
    try:
        result.sha256 = _file_sha256(path)
    except OSError as error:
        result.report.fail(None, f"archive unreadable: {error}")
        return result
    with contextlib.closing(archive_lines(path)) as lines:
        try:
            _verify_records(lines, result, progress_for, trusted_keys)
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
