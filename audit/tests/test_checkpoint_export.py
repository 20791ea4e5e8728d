"""Checkpoints also live outside the database, so a rollback of the whole database shows (issue 12, item 3).

A database restored to an older backup still holds a valid, signed chain,
only a shorter one. Each seal appends its checkpoints to a file in
AUDIT_CHECKPOINT_EXPORT_DIR, and verification fails when the database lacks
the newest exported one, or holds another checkpoint under its number. A
savepoint rolled back after a seal is exactly such a restore.
"""

from __future__ import annotations

import base64
import json

import pytest
from django.db import connection, transaction

from audit import integrity
from audit.models import AuditCheckpoint
from audit.services.checkpoint_export import EXPORT_FILE_NAME, checkpoints_export
from audit.services.sealing import audit_events_seal
from audit.services.verification import audit_trail_verify
from audit.signing import trusted_public_keys
from audit.tests.factories import record_event

pytestmark = pytest.mark.django_db


class _Restored(Exception):
    """Raised to roll a savepoint back: the database forgets, the export does not."""


@pytest.fixture
def export_dir(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_EXPORT_DIR = str(tmp_path / "checkpoints")
    return tmp_path / "checkpoints"


def exported(export_dir) -> list[dict]:
    return [json.loads(line) for line in (export_dir / EXPORT_FILE_NAME).read_text().splitlines()]


def seal(count: int = 3) -> None:
    for n in range(count):
        record_event(n)
    audit_events_seal()


def problems() -> list[str]:
    return [message for _, message in audit_trail_verify(record=False).problems]


def test_each_seal_appends_its_signed_checkpoints_and_verification_compares_them(export_dir):
    seal()
    seal()

    lines = exported(export_dir)
    report = audit_trail_verify(record=False)

    checkpoints = list(AuditCheckpoint.objects.order_by("id"))
    assert [line["id"] for line in lines] == [checkpoint.id for checkpoint in checkpoints]
    keys = trusted_public_keys()
    for line, checkpoint in zip(lines, checkpoints, strict=True):
        assert line["checkpoint_hash"] == checkpoint.checkpoint_hash == integrity.checkpoint_hash(line)
        signature = base64.b64decode(line["signature"])
        assert integrity.signature_valid(keys[line["key_id"]], signature, integrity.checkpoint_message(line))
    assert report.passed and report.export_checked


def test_a_run_that_seals_nothing_still_catches_up_what_a_crash_left_unexported(settings, export_dir):
    settings.AUDIT_CHECKPOINT_EXPORT_DIR = ""
    seal()  # committed, never exported (as if the sealer died between COMMIT and export)
    settings.AUDIT_CHECKPOINT_EXPORT_DIR = str(export_dir)

    assert audit_events_seal().events == 0

    assert [line["id"] for line in exported(export_dir)] == [AuditCheckpoint.objects.get().id]
    assert audit_trail_verify(record=False).passed


def test_a_database_rolled_back_behind_the_exported_checkpoint_fails(export_dir, caplog):
    seal()
    with pytest.raises(_Restored), transaction.atomic():
        seal()
        lost = AuditCheckpoint.objects.order_by("-id").first()
        raise _Restored
    assert not AuditCheckpoint.objects.filter(id=lost.id).exists()

    seal()  # life goes on: a newer checkpoint, chained onto the restored chain, not onto the exported one

    assert AuditCheckpoint.objects.order_by("-id").first().id > lost.id
    assert exported(export_dir)[-1]["id"] == lost.id  # never exported: it would bury the evidence
    assert "does not chain onto the exported one" in caplog.text
    assert (
        f"exported checkpoint {lost.id} (sealed {integrity.timestamp_text(lost.sealed_at)}) is not in the database: "
        "the database was rolled back behind it"
    ) in problems()


def test_a_rolled_back_database_sealed_again_under_the_same_number_fails_and_is_never_exported(export_dir):
    seal()
    with pytest.raises(_Restored), transaction.atomic():
        seal()
        lost = AuditCheckpoint.objects.order_by("-id").first()
        raise _Restored
    with connection.cursor() as cursor:  # a restored backup numbers the next checkpoint as the lost one
        cursor.execute("SELECT setval(pg_get_serial_sequence('audit_auditcheckpoint', 'id'), %s)", [lost.id - 1])

    seal()

    replacement = AuditCheckpoint.objects.order_by("-id").first()
    assert replacement.id == lost.id and replacement.checkpoint_hash != exported(export_dir)[-1]["checkpoint_hash"]
    assert [line["id"] for line in exported(export_dir)].count(lost.id) == 1  # the evidence stays the newest line
    assert (
        f"checkpoint {lost.id} differs from its export: the database was rolled back behind it and sealed again"
    ) in problems()


def test_a_forged_export_line_is_not_trusted(export_dir):
    seal()
    newest = exported(export_dir)[-1]
    forged = {**newest, "merkle_root": "0" * 64}
    forged["checkpoint_hash"] = integrity.checkpoint_hash(forged)
    with (export_dir / EXPORT_FILE_NAME).open("a") as handle:
        handle.write(json.dumps(forged) + "\n")

    assert f"exported checkpoint {newest['id']}: not a checkpoint signed with a trusted key" in problems()


def test_an_export_emptied_while_the_database_holds_checkpoints_fails(export_dir):
    seal()
    (export_dir / EXPORT_FILE_NAME).write_text("")

    assert any("empty, but the database holds checkpoints" in message for message in problems())


def test_without_an_export_directory_nothing_is_written_or_compared(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_EXPORT_DIR = ""
    seal()

    assert checkpoints_export(using="default") == 0
    report = audit_trail_verify(record=False)
    assert report.passed and not report.export_checked


def test_an_archive_whose_last_checkpoint_differs_from_the_exported_one_fails(export_dir, tmp_path):
    """`audit_verify --archive` also asks the export: an archive rebuilt from a rewritten database does not pass."""
    from audit.services.archives.offline import ArchiveVerification
    from audit.services.checkpoint_export import archive_export_compare

    seal()
    line = exported(export_dir)[-1]

    genuine = ArchiveVerification(
        path=tmp_path / "a", last_checkpoint_id=line["id"], last_checkpoint_hash=line["checkpoint_hash"]
    )
    archive_export_compare(genuine)
    rebuilt = ArchiveVerification(path=tmp_path / "b", last_checkpoint_id=line["id"], last_checkpoint_hash="0" * 64)
    archive_export_compare(rebuilt)
    beyond = ArchiveVerification(path=tmp_path / "c", last_checkpoint_id=line["id"] + 1, last_checkpoint_hash="x")
    archive_export_compare(beyond)

    assert genuine.report.passed and beyond.report.passed
    assert [message for _, message in rebuilt.report.problems] == [
        f"checkpoint {line['id']}: differs from the exported one ({export_dir / EXPORT_FILE_NAME})"
    ]
