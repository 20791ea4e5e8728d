"""The archive file format `fintech-audit-archive/1`: framing, writing, reading, parsing records.

One gzip member of JSON Lines:

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

Nothing here touches Django: the format must stay readable where only the
file is at hand.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from audit import integrity

ARCHIVE_FORMAT = "fintech-audit-archive/1"
# RFC 1952 member header: magic, deflate, FEXTRA, mtime 0, "maximum compression", OS unknown, then one
# extra subfield "FA" holding the sha256 of every byte after the header (filled in once the body is written).
GZIP_HEADER_PREFIX = b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x02\xff" + struct.pack("<H2sH", 36, b"FA", 32)
GZIP_HEADER_BYTES = len(GZIP_HEADER_PREFIX) + 32
COMPRESS_LEVEL = 9
READ_CHUNK_BYTES = 64 * 1024
MAX_LINE_BYTES = 16 * 1024 * 1024
HEX_64 = re.compile(r"[0-9a-f]{64}")


class ArchiveMalformed(ValueError):
    """The archive's bytes decompress, but its records are not what this format writes."""


class ArchiveCorrupt(Exception):
    """The archive's bytes are damaged: gzip framing, deflate stream, CRC or length."""


# --- Writing --------------------------------------------------------------------------


class ArchiveWriter:
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


def checkpoint_record(document: dict[str, Any], *, drained_below_xact_id: int | None) -> dict[str, Any]:
    """A checkpoint as `checkpoint_from_record` reads it back: JSON has no bytes, and no datetime."""
    return {
        "kind": "checkpoint",
        **document,
        # The exact string the hash and signature cover, so the verifier recomputes the same bytes.
        "sealed_at": integrity.timestamp_text(document["sealed_at"]),
        "signature": base64.b64encode(document["signature"]).decode(),
        "drained_below_xact_id": drained_below_xact_id,
    }


# --- Reading --------------------------------------------------------------------------


def archive_lines(path: Path) -> Iterator[bytes]:
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


# --- Parsing: every value is checked for type before a verifier relies on it ------------


def parse_record(line: bytes) -> dict[str, Any]:
    record = json.loads(line)
    if not isinstance(record, dict) or not isinstance(record.get("kind"), str):
        raise ArchiveMalformed("a line that is not a record with a kind")
    return record


def integer_field(record: dict[str, Any], key: str) -> int:
    value = record.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ArchiveMalformed(f"{record.get('kind')} record: {key} is not an integer")
    return value


def _hex_hash(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not HEX_64.fullmatch(value):
        raise ArchiveMalformed(f"{record.get('kind')} record: {key} is not a sha256 hex digest")
    return value


def event_from_record(record: dict[str, Any]) -> dict[str, Any]:
    """The event document its seal covers: the record without its kind."""
    document = {key: value for key, value in record.items() if key != "kind"}
    integer_field(document, "id")
    return document


def seal_from_record(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": integer_field(record, "event_id"),
        "checkpoint_id": integer_field(record, "checkpoint_id"),
        "leaf_hash": _hex_hash(record, "leaf_hash"),
    }


def checkpoint_from_record(record: dict[str, Any]) -> dict[str, Any]:
    checkpoint = {key: integer_field(record, key) for key in ("id", "first_event_id", "last_event_id", "event_count")}
    checkpoint |= {key: _hex_hash(record, key) for key in ("merkle_root", "previous_hash", "checkpoint_hash")}
    for key in ("sealed_at", "key_id", "signature"):
        if not isinstance(record.get(key), str):
            raise ArchiveMalformed(f"checkpoint record: {key} is not a string")
        checkpoint[key] = record[key]
    checkpoint["signature"] = base64.b64decode(checkpoint["signature"], validate=True)
    return checkpoint


def public_keys_from_header(header: dict[str, Any]) -> dict[str, bytes]:
    """Key id to raw public key, as the header lists them; whether each key matches its id is the caller's check."""
    encoded = header.get("public_keys")
    if not isinstance(encoded, dict) or not all(isinstance(value, str) for value in encoded.values()):
        raise ArchiveMalformed("header: public_keys is not a mapping of key id to base64")
    return {key_id: base64.b64decode(value, validate=True) for key_id, value in encoded.items()}
