import io, time
from pathlib import Path
import pytest
from django.core.management import call_command
from audit.services.events import Actor, audit_event_record
from audit.services.sealing import audit_events_seal
from audit.services.archives import audit_archive_verify
from audit.models import AuditArchive

pytestmark = pytest.mark.django_db

def test_flip(tmp_path):
    events = [audit_event_record(event_type="api.call", outcome="success", actor=Actor(user="u1"), payload={"n": n}) for n in range(30)]
    audit_events_seal(batch_size=10)
    d = events[0].occurred_at if events[0].occurred_at else None
    from audit.models import AuditEvent
    day = AuditEvent.objects.get(id=events[0].id).occurred_at.date()
    import datetime
    out = io.StringIO()
    call_command("audit_export", "--from", day.isoformat(), "--to", (day+datetime.timedelta(days=1)).isoformat(), "--output-dir", str(tmp_path), stdout=out)
    print(out.getvalue())
    archive = AuditArchive.objects.get()
    path = tmp_path / archive.file_name
    data = path.read_bytes()
    print("size", len(data))
    t = time.time()
    assert audit_archive_verify(path).report.passed
    bad = tmp_path / "bad"
    passes = {}
    for mask in (0xFF, 0x01, 0x80, 0x40, 0x10, 0x02, 0x04, 0x08, 0x20):
        for i in range(len(data)):
            b = bytearray(data); b[i] ^= mask
            bad.write_bytes(b)
            r = audit_archive_verify(bad)
            if r.report.passed:
                passes.setdefault(mask, []).append(i)
    print("time", time.time() - t)
    print("passes", passes)
    msgs = {}
    for i in range(len(data)):
        b = bytearray(data); b[i] ^= 0xFF
        bad.write_bytes(b)
        r = audit_archive_verify(bad)
        m = r.report.problems[0][1][:40]
        msgs[m] = msgs.get(m, 0) + 1
    print(msgs)
    import gzip
    assert gzip.decompress(data).decode().count("\n") == 1 + 30 + 30 + 3 + 1
