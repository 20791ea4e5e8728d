"""Export to WORM archives, offline verification without a database, and purging what is archived."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.models import User
from accounts.tests.operator_helpers import operator_create, operator_stdin
from audit import integrity
from audit.models import AuditArchive, AuditCheckpoint, AuditEvent, AuditSeal, AuditSigningKey
from audit.services.archives import ArchiveWriter, audit_archive_verify
from audit.services.events import Actor, audit_event_record
from audit.services.sealing import audit_events_seal
from conftest import ROOT

pytestmark = pytest.mark.django_db
NOWHERE = "postgres://nobody@127.0.0.1:1/none"
# Commands that change state authenticate their operator (fintech/operators.py); run() answers for them.
OPERATOR_COMMANDS = frozenset({"audit_export", "audit_purge"})
OPERATOR_EMAIL = "archivist@example.com"


# --- helpers ---------------------------------------------------------------------------


def operator() -> User:
    """The staff member the state-changing commands run as."""
    return User.objects.filter(email=OPERATOR_EMAIL).first() or operator_create(email=OPERATOR_EMAIL, superuser=True)


def run(command: str, *args: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    options = {"stdin": operator_stdin(operator())} if command in OPERATOR_COMMANDS else {}
    try:
        call_command(command, *args, stdout=stdout, stderr=stderr, **options)
    except CommandError as error:
        return error.returncode, stdout.getvalue(), f"{stderr.getvalue()}{error}\n"
    return 0, stdout.getvalue(), stderr.getvalue()


def record_events(count: int) -> list[AuditEvent]:
    events = [
        audit_event_record(event_type="api.call", outcome="success", actor=Actor(user="u1"), payload={"n": n})
        for n in range(count)
    ]
    return list(AuditEvent.objects.filter(id__in=[event.id for event in events]).order_by("id"))


def events_at(occurred_at: datetime, count: int) -> list[AuditEvent]:
    """Events from another time. The database stamps every event with its own clock (issue 12), so
    the test does what only the owner can: switch that trigger off while it writes the past."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_identity")
    try:
        return [
            AuditEvent.objects.create(
                occurred_at=occurred_at, event_type="api.call", outcome="success", actor_user="u1", payload={"n": n}
            )
            for n in range(count)
        ]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE audit_auditevent ENABLE ALWAYS TRIGGER audit_auditevent_identity")


def checkpoint_of(event: AuditEvent) -> int:
    return AuditSeal.objects.get(event_id=event.id).checkpoint_id


def export(day_from: date, day_to: date, output_dir: Path) -> AuditArchive:
    code, _, stderr = run(
        "audit_export", "--from", day_from.isoformat(), "--to", day_to.isoformat(), "--output-dir", str(output_dir)
    )
    assert code == 0, stderr
    return AuditArchive.objects.order_by("-id").first()


def export_day(day: date, output_dir: Path) -> tuple[AuditArchive, Path]:
    archive = export(day, day + timedelta(days=1), output_dir)
    return archive, output_dir / archive.file_name


def archive_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]


def rewrite(path: Path, records: list[dict]) -> Path:
    """A correctly framed archive with other content: only the content checks can catch it."""
    target = path.with_name("rewritten.jsonl.gz")
    with target.open("wb") as handle:
        writer = ArchiveWriter(handle)
        for record in records:
            writer.write(record)
        writer.close()
    return target


def problems(path: Path) -> list[str]:
    return [message for _, message in audit_archive_verify(path).report.problems]


@pytest.fixture
def sealed_today(tmp_path) -> tuple[list[AuditEvent], AuditArchive, Path]:
    events = record_events(30)
    audit_events_seal(batch_size=10)
    archive, path = export_day(events[0].occurred_at.astimezone(UTC).date(), tmp_path)
    return events, archive, path


# --- export ----------------------------------------------------------------------------


def test_export_writes_a_read_only_archive_registered_with_its_sha256(sealed_today):
    events, archive, path = sealed_today
    checkpoints = list(AuditCheckpoint.objects.order_by("id"))
    day = events[0].occurred_at.astimezone(UTC).date()

    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert archive.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (archive.first_checkpoint_id, archive.last_checkpoint_id) == (checkpoints[0].id, checkpoints[-1].id)
    assert (archive.event_count, archive.created_by) == (30, str(operator().public_id))
    assert archive.file_name.startswith(
        f"audit-{day:%Y%m%d}-{day + timedelta(days=1):%Y%m%d}-checkpoints-{checkpoints[0].id}-{checkpoints[-1].id}-"
    )
    exported = AuditEvent.objects.get(event_type="audit.exported")
    assert (exported.outcome, exported.actor_staff, exported.actor_client, exported.object_id) == (
        "success",
        str(operator().public_id),
        "",
        str(archive.id),
    )
    assert exported.payload == {
        "file_name": archive.file_name,
        "sha256": archive.sha256,
        "first_checkpoint_id": checkpoints[0].id,
        "last_checkpoint_id": checkpoints[-1].id,
        "events": 30,
        "checkpoints": 3,
        "from": day.isoformat(),
        "to": (day + timedelta(days=1)).isoformat(),
    }


def test_the_archive_is_plain_gzip_json_lines_with_whole_checkpoints(sealed_today):
    events, _, path = sealed_today
    key = AuditSigningKey.objects.get()
    checkpoint = AuditCheckpoint.objects.order_by("id").first()

    records = archive_records(path)

    header, footer = records[0], records[-1]
    assert header["kind"] == "header"
    assert header["format"] == "fintech-audit-archive/1"
    assert header["public_keys"] == {key.key_id: base64.b64encode(bytes(key.public_key)).decode()}
    assert footer == {"kind": "footer", "events": 30, "checkpoints": 3}
    kinds = [record["kind"] for record in records[1:-1]]
    assert kinds == (["event"] * 10 + ["seal"] * 10 + ["checkpoint"]) * 3
    first_event = {key: value for key, value in records[1].items() if key != "kind"}
    assert first_event == integrity.event_document(events[0])
    archived_checkpoint = records[21]
    assert archived_checkpoint["sealed_at"] == checkpoint.sealed_at.astimezone(UTC).isoformat(timespec="microseconds")
    assert archived_checkpoint["checkpoint_hash"] == checkpoint.checkpoint_hash


def test_export_refuses_an_empty_selection_and_writes_nothing(tmp_path):
    record_events(3)
    audit_events_seal()

    code, _, stderr = run("audit_export", "--from", "2001-01-01", "--to", "2001-01-02", "--output-dir", str(tmp_path))

    assert code == 1
    assert "no sealed audit event occurred in [2001-01-01, 2001-01-02): nothing to export" in stderr
    assert list(tmp_path.iterdir()) == []
    assert not AuditArchive.objects.exists()
    assert not AuditEvent.objects.filter(event_type="audit.exported").exists()


def test_export_refuses_a_reversed_range(tmp_path):
    code, _, stderr = run("audit_export", "--from", "2020-01-02", "--to", "2020-01-01", "--output-dir", str(tmp_path))

    assert code == 1
    assert "must be before" in stderr


def test_export_never_overwrites_an_existing_file(tmp_path):
    events = record_events(3)
    audit_events_seal()
    day = events[0].occurred_at.astimezone(UTC).date()
    checkpoint_id = checkpoint_of(events[0])
    frozen = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)
    existing = tmp_path / (
        f"audit-{day:%Y%m%d}-{day + timedelta(days=1):%Y%m%d}-checkpoints-{checkpoint_id}-{checkpoint_id}"
        "-20300506T070809Z.jsonl.gz"
    )
    existing.write_bytes(b"someone else's file")

    with mock.patch("audit.services.archives.export.timezone.now", return_value=frozen):
        code, _, stderr = run(
            "audit_export", "--from", str(day), "--to", str(day + timedelta(days=1)), "--output-dir", str(tmp_path)
        )

    assert code == 1
    assert f"{existing} already exists: archives are never overwritten" in stderr
    assert existing.read_bytes() == b"someone else's file"
    assert not AuditArchive.objects.exists()


def test_export_refuses_a_name_already_registered(tmp_path):
    events = record_events(3)
    audit_events_seal()
    day = events[0].occurred_at.astimezone(UTC).date()
    frozen = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)

    with mock.patch("audit.services.archives.export.timezone.now", return_value=frozen):
        first = export(day, day + timedelta(days=1), tmp_path / "first")
        code, _, stderr = run(
            "audit_export", "--from", str(day), "--to", str(day + timedelta(days=1)), "--output-dir", str(tmp_path)
        )

    assert code == 1
    assert f"an archive named {first.file_name} is already registered" in stderr
    assert AuditArchive.objects.count() == 1
    assert not (tmp_path / first.file_name).exists()


def test_export_takes_every_checkpoint_between_the_first_and_the_last_selected(tmp_path):
    early = datetime(2020, 3, 1, 12, tzinfo=UTC)
    first = events_at(early, 2)
    audit_events_seal()
    middle = events_at(early + timedelta(days=30), 2)
    audit_events_seal()
    late_writer = events_at(early, 1)  # a long transaction's row: early time, later checkpoint
    audit_events_seal()

    archive, path = export_day(early.date(), tmp_path)

    assert (archive.first_checkpoint_id, archive.last_checkpoint_id) == (
        checkpoint_of(first[0]),
        checkpoint_of(late_writer[0]),
    )
    archived_ids = {record["id"] for record in archive_records(path) if record["kind"] == "event"}
    assert archived_ids == {event.id for event in first + middle + late_writer}
    assert audit_archive_verify(path).report.passed


def test_an_archive_starting_mid_chain_is_anchored_on_its_first_checkpoints_link(tmp_path):
    early, later = datetime(2020, 3, 1, 12, tzinfo=UTC), datetime(2020, 3, 9, 12, tzinfo=UTC)
    events_at(early, 10)
    audit_events_seal(batch_size=10)
    straddling = events_at(early, 3) + events_at(later, 3)  # one checkpoint, two days
    audit_events_seal(batch_size=10)
    events_at(later, 2)
    audit_events_seal(batch_size=10)
    first, second, third = AuditCheckpoint.objects.order_by("id")

    archive, path = export_day(later.date(), tmp_path)
    code, stdout, stderr = run("audit_verify", "--archive", str(path))

    assert (archive.first_checkpoint_id, archive.last_checkpoint_id, archive.event_count) == (second.id, third.id, 8)
    assert {r["id"] for r in archive_records(path) if r["kind"] == "event"} >= {e.id for e in straddling}
    assert code == 0, stderr
    assert f"checkpoints: {second.id}-{third.id} (chain anchored at previous hash {first.checkpoint_hash})" in stdout
    assert "events checked: 8" in stdout


# --- offline verification ----------------------------------------------------------------


def test_an_archive_verifies_with_database_access_blocked(sealed_today, django_db_blocker):
    _, archive, path = sealed_today

    with django_db_blocker.block():
        code, stdout, stderr = run("audit_verify", "--archive", str(path))

    assert code == 0, stderr
    assert stdout.splitlines() == [
        f"archive: {path}",
        f"sha256: {archive.sha256}",
        f"checkpoints: {archive.first_checkpoint_id}-{archive.last_checkpoint_id} (chain anchored at genesis)",
        f"signing keys: {AuditSigningKey.objects.get().key_id}",
        "checkpoints checked: 3",
        "events checked: 30",
        "events purged: 0",
        "events unsealed: 0",
        "audit trail verification PASSED",
    ]


def test_an_archive_verifies_in_a_process_that_cannot_reach_any_database(sealed_today, tmp_path):
    _, _, path = sealed_today
    damaged = tmp_path / "damaged.jsonl.gz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "fintech.settings.test",
        "DATABASE_URL": NOWHERE,
        "DATABASE_OWNER_URL": NOWHERE,
        "VAULT_DATABASE_URL": NOWHERE,
        "VAULT_DATABASE_OWNER_URL": NOWHERE,
    }

    def manage(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "manage.py", "audit_verify", *args]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    intact, corrupt, database = manage("--archive", str(path)), manage("--archive", str(damaged)), manage()

    assert intact.returncode == 0, intact.stderr
    assert "audit trail verification PASSED" in intact.stdout
    assert corrupt.returncode == 1
    assert "archive corrupt" in corrupt.stderr
    assert "FIRST BAD SEQUENCE: " in corrupt.stderr
    assert database.returncode != 0  # the same environment really has no database
    assert "127.0.0.1" in database.stderr


def test_flipping_a_byte_in_the_middle_fails_verification(sealed_today, tmp_path):
    _, _, path = sealed_today
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged = tmp_path / "damaged.jsonl.gz"
    damaged.write_bytes(bytes(data))

    code, stdout, stderr = run("audit_verify", "--archive", str(damaged))

    assert code == 1
    assert "archive corrupt" in stderr
    assert "audit trail verification FAILED" in stderr
    assert "PASSED" not in stdout


def test_every_flipped_byte_and_every_flipped_bit_is_caught(sealed_today, tmp_path):
    _, _, path = sealed_today
    data = path.read_bytes()
    damaged = tmp_path / "damaged.jsonl.gz"
    missed = []

    for position in range(len(data)):
        for mask in (0xFF, 1 << (position % 8)):
            changed = bytearray(data)
            changed[position] ^= mask
            damaged.write_bytes(bytes(changed))
            messages = problems(damaged)
            if not any(message.startswith("archive corrupt") for message in messages):
                missed.append((position, mask, messages))

    assert missed == []


def test_a_truncated_archive_fails(sealed_today, tmp_path):
    _, _, path = sealed_today
    truncated = tmp_path / "truncated.jsonl.gz"
    truncated.write_bytes(path.read_bytes()[:-20])

    assert problems(truncated)[-1].startswith("archive corrupt")


def test_content_changed_and_reframed_is_caught_by_the_seals(sealed_today):
    events, _, path = sealed_today
    records = archive_records(path)
    records[5]["payload"] = {"n": 999}

    assert problems(rewrite(path, records)) == [f"sequence {events[4].id}: event altered after sealing"]


def test_an_archived_event_no_archived_checkpoint_seals_is_reported(sealed_today):
    _, _, path = sealed_today
    records = archive_records(path)
    stray = {**records[1], "id": 10_000_000}
    records[0]["events"] = records[-1]["events"] = 31  # counts made to agree: only the seals can tell

    assert problems(rewrite(path, [*records[:1], stray, *records[1:]])) == [
        "sequence 10000000: in the archive but not sealed by an archived checkpoint"
    ]


def test_a_dropped_checkpoint_breaks_the_chain_and_the_footer(sealed_today):
    _, archive, path = sealed_today
    records = archive_records(path)
    without_second = records[:22] + records[43:]

    messages = problems(rewrite(path, without_second))

    assert f"checkpoint {archive.last_checkpoint_id}: chain broken (previous hash mismatch)" in messages
    assert "footer counts 30 events and 3 checkpoints; the archive holds 20 and 2" in messages


# --- purge -------------------------------------------------------------------------------


def eight_years_ago() -> datetime:
    return timezone.now() - timedelta(days=8 * 365)


def test_purge_deletes_exactly_the_old_archived_events_and_the_trail_still_verifies(tmp_path):
    old = events_at(eight_years_ago(), 12)
    audit_events_seal(batch_size=10)
    not_exported = events_at(eight_years_ago() - timedelta(days=365), 1)
    audit_events_seal(batch_size=10)
    _, path = export_day(old[0].occurred_at.astimezone(UTC).date(), tmp_path)
    first_id, through_id = checkpoint_of(old[0]), checkpoint_of(old[-1])

    code, stdout, stderr = run("audit_purge")

    assert code == 0, stderr
    assert f"deleted 12 events of checkpoints {first_id}-{through_id} (2 checkpoints)" in stdout
    assert f"stopped: checkpoint {checkpoint_of(not_exported[0])} is in no exported archive" in stdout
    assert not AuditEvent.objects.filter(id__in=[event.id for event in old]).exists()
    assert AuditEvent.objects.filter(id=not_exported[0].id).exists()
    purged = AuditEvent.objects.get(event_type="audit.purged")
    assert (purged.outcome, purged.actor_staff, purged.actor_client) == ("success", str(operator().public_id), "")
    assert purged.payload == {
        "first_checkpoint_id": first_id,
        "through_checkpoint_id": through_id,
        "events_deleted": 12,
        "cutoff": purged.payload["cutoff"],
    }
    assert datetime.fromisoformat(purged.payload["cutoff"]) < timezone.now() - timedelta(days=7 * 365)
    code, stdout, stderr = run("audit_verify")
    assert code == 0, stderr
    assert "events purged: 12" in stdout
    assert audit_archive_verify(path).report.passed  # the archive still holds what the database gave up


def test_purge_keeps_recent_events_even_when_exported(tmp_path):
    old = events_at(eight_years_ago(), 3)
    audit_events_seal()
    export_day(old[0].occurred_at.astimezone(UTC).date(), tmp_path)
    recent = record_events(2)
    audit_events_seal()
    export_day(recent[0].occurred_at.astimezone(UTC).date(), tmp_path)

    code, stdout, stderr = run("audit_purge")

    assert code == 0, stderr
    assert f"stopped: checkpoint {checkpoint_of(recent[0])} holds events newer than the cutoff" in stdout
    assert not AuditEvent.objects.filter(id__in=[event.id for event in old]).exists()
    assert AuditEvent.objects.filter(id__in=[event.id for event in recent]).count() == 2
    assert run("audit_verify")[0] == 0


def test_purge_commits_bounded_batches_each_with_its_own_record(tmp_path):
    old = events_at(eight_years_ago(), 12)
    audit_events_seal(batch_size=10)
    export_day(old[0].occurred_at.astimezone(UTC).date(), tmp_path)

    code, _, stderr = run("audit_purge", "--batch-size", "5")

    assert code == 0, stderr
    records = AuditEvent.objects.filter(event_type="audit.purged").order_by("id")
    assert [(r.payload["through_checkpoint_id"], r.payload["events_deleted"]) for r in records] == [
        (checkpoint_of(old[0]), 10),  # a checkpoint is never split: a larger one goes alone
        (checkpoint_of(old[-1]), 2),
    ]
    assert run("audit_verify")[0] == 0


def test_a_dry_run_deletes_and_records_nothing(tmp_path):
    old = events_at(eight_years_ago(), 4)
    audit_events_seal()
    export_day(old[0].occurred_at.astimezone(UTC).date(), tmp_path)

    code, stdout, _ = run("audit_purge", "--dry-run")

    assert code == 0
    assert "would delete 4 events" in stdout
    assert AuditEvent.objects.filter(id__in=[event.id for event in old]).count() == 4
    assert not AuditEvent.objects.filter(event_type="audit.purged").exists()


def test_a_second_purge_finds_nothing_more(tmp_path):
    old = events_at(eight_years_ago(), 4)
    audit_events_seal()
    export_day(old[0].occurred_at.astimezone(UTC).date(), tmp_path)
    run("audit_purge")

    code, stdout, _ = run("audit_purge")

    assert code == 0
    assert "nothing to purge" in stdout
    assert AuditEvent.objects.filter(event_type="audit.purged").count() == 1


def test_old_events_that_were_never_exported_stay(tmp_path):
    old = events_at(eight_years_ago(), 4)
    audit_events_seal()

    code, stdout, _ = run("audit_purge")

    assert code == 0
    assert "nothing to purge" in stdout
    assert AuditEvent.objects.filter(id__in=[event.id for event in old]).count() == 4


def test_an_archive_signed_with_a_key_outside_the_configured_ones_fails_offline(sealed_today, settings, tmp_path):
    """Issue 12: the header's keys are whoever wrote the file's choice; `audit_verify --archive` trusts the files."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    _, _, path = sealed_today
    other = tmp_path / "other.pub.pem"
    other.write_bytes(
        Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    settings.AUDIT_VERIFY_KEY_PATHS = [str(other)]

    code, _stdout, stderr = run("audit_verify", "--archive", str(path))

    assert code == 1
    assert f"public key {AuditSigningKey.objects.get().key_id}: not among the trusted keys" in stderr


def test_a_missing_archive_path_is_a_usage_error_not_a_failed_verification(tmp_path):
    code, _stdout, stderr = run("audit_verify", "--archive", str(tmp_path / "no-such.jsonl.gz"))

    assert code == 2 and "no archive file at" in stderr and "FAILED" not in stderr
