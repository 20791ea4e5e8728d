"""Signed checkpoints, also written outside the database, so that a rollback of the whole database shows.

Every checkpoint is chained and signed, but a database restored to last
week's backup (by whoever administers it) still holds a valid chain: a shorter
one. So after each seal the sealer appends its new checkpoints, as signed JSON
lines, to `checkpoints.jsonl` in AUDIT_CHECKPOINT_EXPORT_DIR (storage the
database's administrators cannot rewrite, in production), and `audit_verify`
checks the newest line against the database: missing or different there means
the database went back behind a checkpoint that had been sealed (issue 12).

Appending catches up from the file's newest line, so a crash between a seal's
COMMIT and its export loses nothing: the next run writes it. A checkpoint that
does not chain onto the file's newest line is never appended (the database was
rolled back and sealed again): the file keeps the evidence and verification
keeps failing until someone looks.
"""

from __future__ import annotations

import base64
import fcntl
import json
import logging
import os
from pathlib import Path
from typing import Any

from django.conf import settings

from audit import integrity

logger = logging.getLogger(__name__)
EXPORT_FILE_NAME = "checkpoints.jsonl"
TAIL_BYTES = 64 * 1024  # a line is about 600 bytes
EXPORT_CHUNK = 2000


def export_path() -> Path | None:
    directory = settings.AUDIT_CHECKPOINT_EXPORT_DIR
    return Path(directory) / EXPORT_FILE_NAME if directory else None


def checkpoint_line(checkpoint) -> dict[str, Any]:
    """The signed fields of a checkpoint row, its hash and its signature, as one JSON-ready document."""
    fields = integrity.signed_fields(checkpoint)
    return {
        **fields,
        "sealed_at": integrity.timestamp_text(fields["sealed_at"]),
        "checkpoint_hash": checkpoint.checkpoint_hash,
        "signature": base64.b64encode(bytes(checkpoint.signature)).decode(),
    }


def _last_line(handle) -> dict[str, Any] | None:
    size = handle.seek(0, os.SEEK_END)
    handle.seek(max(0, size - TAIL_BYTES))
    lines = [line for line in handle.read().splitlines() if line.strip()]
    return json.loads(lines[-1]) if lines else None


def newest_exported_checkpoint() -> dict[str, Any] | None:
    """The file's newest checkpoint; None when the file is missing or empty. OSError/ValueError when unreadable."""
    path = export_path()
    if path is None or not path.exists():
        return None
    with path.open("rb") as handle:
        return _last_line(handle)


def checkpoints_export(*, using: str) -> int:
    """Append every checkpoint newer than the file's newest line; returns how many. Sealer only."""
    from audit.models import AuditCheckpoint

    path = export_path()
    if path is None:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    with os.fdopen(fd, "r+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # two sealers never interleave or duplicate lines
        newest = _last_line(handle)
        after = newest["id"] if newest else 0
        previous_hash = newest["checkpoint_hash"] if newest else None
        written = 0
        pending = AuditCheckpoint.objects.using(using).filter(id__gt=after).order_by("id")
        for checkpoint in pending.iterator(chunk_size=EXPORT_CHUNK):
            if previous_hash is not None and checkpoint.previous_hash != previous_hash:
                logger.error(
                    "audit checkpoint does not chain onto the exported one: database rolled back? not exported",
                    extra={"checkpoint_id": checkpoint.id, "exported_checkpoint_id": after},
                )
                break
            handle.write(integrity.canonical_json(checkpoint_line(checkpoint)) + b"\n")
            previous_hash, written = checkpoint.checkpoint_hash, written + 1
        handle.flush()
        os.fsync(handle.fileno())
    return written


def export_compare(report, public_keys: dict[str, bytes]) -> None:
    """Fail `report` when the database lacks, or differs from, the newest exported checkpoint.

    The newest is enough: the database's chain is verified link by link, so a
    matching newest checkpoint vouches for every one before it.
    """
    from audit.models import AuditCheckpoint

    path = export_path()
    if path is None:
        return
    report.export_checked = True
    try:
        exported = newest_exported_checkpoint()
    except (OSError, ValueError) as error:
        report.fail(None, f"checkpoint export {path}: unreadable ({error.__class__.__name__})")
        return
    if exported is None:
        if AuditCheckpoint.objects.exists():
            report.fail(None, f"checkpoint export {path}: empty, but the database holds checkpoints")
        return
    number = exported.get("id")
    try:
        signature = base64.b64decode(exported["signature"], validate=True)
        authentic = integrity.checkpoint_hash(exported) == exported["checkpoint_hash"] and integrity.signature_valid(
            public_keys.get(exported["key_id"], b""), signature, integrity.checkpoint_message(exported)
        )
    except (KeyError, TypeError, ValueError):
        authentic = False
    if not authentic:
        report.fail(None, f"exported checkpoint {number}: not a checkpoint signed with a trusted key")
        return
    stored = AuditCheckpoint.objects.filter(id=number).first()
    if stored is None:
        report.fail(
            None,
            f"exported checkpoint {number} (sealed {exported['sealed_at']}) is not in the database: "
            "the database was rolled back behind it",
        )
    elif stored.checkpoint_hash != exported["checkpoint_hash"]:
        report.fail(
            None,
            f"checkpoint {number} differs from its export: the database was rolled back behind it and sealed again",
        )


def archive_export_compare(result) -> None:
    """Fail an archive's report when the export holds its last checkpoint with another hash.

    An archive vouches for itself link by link; the export (written on each
    seal, outside the database) says what that last link really was, so an
    archive rebuilt from a rewritten database does not verify. A checkpoint the
    export does not hold (the export started later) is not compared: nothing
    to compare with.
    """
    path = export_path()
    number = result.last_checkpoint_id
    if path is None or number is None or not path.exists():
        return
    with path.open("rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                exported = json.loads(line)
            except ValueError:
                result.report.fail(None, f"checkpoint export {path}: a line that is not JSON")
                return
            if exported.get("id") == number:
                if exported.get("checkpoint_hash") != result.last_checkpoint_hash:
                    result.report.fail(None, f"checkpoint {number}: differs from the exported one ({path})")
                return
