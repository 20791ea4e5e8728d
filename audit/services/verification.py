"""Verification of the trail: every checkpoint, every signature, every sealed row.

The same checks run over the database (`audit_verify`) and over an archive
file (`audit_verify --archive`), through `TrailVerifier`, which is fed plain
dicts and does no I/O of its own. Over the database it also checks that time
never goes backwards from one event id to the next, and that the database holds
the newest checkpoint exported outside it (`checkpoint_export`). A failure is
recorded by the sealer and raised as an alert (`audit.alerts`), issue 12.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from audit import integrity
from audit.selectors import drained_floor

logger = logging.getLogger(__name__)
# How far an event's time may lie before an earlier id's. The database stamps both (audit migration 0006): the id
# from the sequence, then the time with clock_timestamp() in the same trigger, a few microseconds later. Two inserts
# racing between those two steps can swap order by about that much, or by a scheduler stall of the backend in
# between; a second covers that with a wide margin, and a backdated row worth forging is hours or days off.
CLOCK_TOLERANCE = timedelta(seconds=1)


@dataclass
class VerificationReport:
    checkpoints_checked: int = 0
    events_checked: int = 0
    purged_events: int = 0
    unsealed_events: int = 0
    # Ids no event and no seal holds: inserts that rolled back (or rows deleted before they were sealed).
    sequence_gaps: int = 0
    export_checked: bool = False  # the newest checkpoint exported outside the database was compared
    problems: list[tuple[int | None, str]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def first_bad_event_id(self) -> int | None:
        ids = [event_id for event_id, _ in self.problems if event_id is not None]
        return min(ids) if ids else None

    def fail(self, event_id: int | None, message: str) -> None:
        self.problems.append((event_id, message))


class TrailVerifier:
    """Checks checkpoints in order; each comes with its seals and the events still present.

    `purged_through_checkpoint`: seals of checkpoints up to this id may have
    no event any more (exported, then purged after the retention period).
    `previous_hash`: the link the first checkpoint must carry; an archive that
    starts mid-chain anchors on its first checkpoint's own link instead of genesis.
    `report`: pass one in to collect these problems with a caller's own (an
    archive's framing and structure), in the order they were found.
    """

    def __init__(
        self,
        public_keys: dict[str, bytes],
        *,
        purged_through_checkpoint: int = 0,
        previous_hash: str = integrity.GENESIS_HASH,
        report: VerificationReport | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.public_keys = public_keys
        self.purged_through = purged_through_checkpoint
        self.progress = progress or (lambda n: None)
        self.report = report if report is not None else VerificationReport()
        self.previous_hash = previous_hash

    def check_checkpoint(self, checkpoint: dict, seals: list[dict], events: dict[int, dict]) -> None:
        report = self.report
        report.checkpoints_checked += 1
        number = checkpoint["id"]
        if checkpoint["previous_hash"] != self.previous_hash:
            report.fail(checkpoint["first_event_id"], f"checkpoint {number}: chain broken (previous hash mismatch)")
        if integrity.checkpoint_hash(checkpoint) != checkpoint["checkpoint_hash"]:
            report.fail(checkpoint["first_event_id"], f"checkpoint {number}: its fields do not match its hash")
        public_key = self.public_keys.get(checkpoint["key_id"])
        message = integrity.checkpoint_message(checkpoint)
        if public_key is None or not integrity.signature_valid(public_key, checkpoint["signature"], message):
            report.fail(checkpoint["first_event_id"], f"checkpoint {number}: signature invalid")
        self.previous_hash = checkpoint["checkpoint_hash"]

        seals = sorted(seals, key=lambda seal: seal["event_id"])
        if len(seals) != checkpoint["event_count"] or (
            seals
            and (seals[0]["event_id"], seals[-1]["event_id"])
            != (checkpoint["first_event_id"], checkpoint["last_event_id"])
        ):
            report.fail(checkpoint["first_event_id"], f"checkpoint {number}: its seals do not match its range")
        elif seals and integrity.merkle_root([seal["leaf_hash"] for seal in seals]) != checkpoint["merkle_root"]:
            report.fail(checkpoint["first_event_id"], f"checkpoint {number}: seal hashes do not match the signed root")
        for seal in seals:
            event_id = seal["event_id"]
            event = events.get(event_id)
            if event is None:
                if number <= self.purged_through:
                    report.purged_events += 1
                else:
                    report.fail(event_id, f"sequence {event_id}: sealed event is missing (deleted)")
                continue
            report.events_checked += 1
            if integrity.leaf_hash(event) != seal["leaf_hash"]:
                report.fail(event_id, f"sequence {event_id}: event altered after sealing")
        self.progress(len(seals))

    def check_unsealed(self, unsealed: Iterable[tuple[int, int]], *, drained_below_xact_id: int) -> None:
        """(event id, xact id) of events in no checkpoint.

        Fine while their transaction is at or above the sealer's drained
        horizon (they wait for the next pass); below it, the sealer must have
        seen them, so they were skipped or inserted behind its back.
        """
        for event_id, xact_id in unsealed:
            self.report.unsealed_events += 1
            if xact_id < drained_below_xact_id:
                self.report.fail(event_id, f"sequence {event_id}: committed before the last seal but never sealed")

    def check_event_order(self, events: Iterable[tuple[int, datetime]]) -> None:
        """(event id, occurred_at) in id order: a later id must not carry an earlier time (beyond CLOCK_TOLERANCE).

        The database gives every event its id and its time (issue 12), so an
        event whose time lies before an earlier id's was written behind the
        trigger's back: backdated, or given an id out of turn. Compared with
        the latest time seen so far, so one backdated row does not excuse the next.
        """
        latest: tuple[int, datetime] | None = None
        for event_id, occurred_at in events:
            if latest is not None and occurred_at < latest[1] - CLOCK_TOLERANCE:
                self.report.fail(
                    event_id,
                    f"sequence {event_id}: time went backwards (occurred {occurred_at.isoformat()}, "
                    f"after sequence {latest[0]} at {latest[1].isoformat()})",
                )
            elif latest is None or occurred_at > latest[1]:
                latest = (event_id, occurred_at)


# --- The database side -------------------------------------------------------------


def database_checkpoints(
    *, after_id: int = 0, through_id: int | None = None, page_size: int = 20
) -> Iterator[tuple[Any, list[dict], dict[int, dict]]]:
    """(checkpoint, its seals in event order, the events present in its page's id range), in checkpoint order.

    Paged, so memory holds one page of events however long the trail is. The
    database verifier and the archive export both read the trail through this
    one loop, so an archive holds exactly what `audit_verify` checks.
    """
    from audit.models import AuditCheckpoint, AuditEvent, AuditSeal

    selected = AuditCheckpoint.objects.all()
    if through_id is not None:
        selected = selected.filter(id__lte=through_id)
    last_id = after_id
    while True:
        checkpoints = list(selected.filter(id__gt=last_id).order_by("id")[:page_size])
        if not checkpoints:
            return
        ids = [c.id for c in checkpoints]
        seals: dict[int, list[dict]] = {i: [] for i in ids}
        for seal in (
            AuditSeal.objects.filter(checkpoint_id__in=ids)
            .order_by("event_id")
            .values("event_id", "checkpoint_id", "leaf_hash")
        ):
            seals[seal["checkpoint_id"]].append(seal)
        low, high = min(c.first_event_id for c in checkpoints), max(c.last_event_id for c in checkpoints)
        events = {e.id: integrity.event_document(e) for e in AuditEvent.objects.filter(id__gte=low, id__lte=high)}
        for checkpoint in checkpoints:
            yield checkpoint, seals[checkpoint.id], events
        last_id = ids[-1]


def checkpoint_document(checkpoint) -> dict:
    return {
        **integrity.signed_fields(checkpoint),
        "checkpoint_hash": checkpoint.checkpoint_hash,
        "signature": bytes(checkpoint.signature),
    }


def purged_through_checkpoint() -> int:
    """Up to which checkpoint missing events count as purged rather than deleted.

    The runtime role can insert events, so an `audit.purged` record alone is
    not proof: its claim is honoured only as far as exported archives reach,
    and only over a run of archived checkpoints with no gap (the same rule the
    database trigger applies before it lets a purge DELETE through).
    """
    from audit.models import AuditArchive, AuditCheckpoint, AuditEvent

    claimed = max(
        (
            int(p.get("through_checkpoint_id", 0))
            for p in AuditEvent.objects.filter(event_type="audit.purged", outcome="success").values_list(
                "payload", flat=True
            )
        ),
        default=0,
    )
    if not claimed:
        return 0
    covered = 0
    ranges = sorted(AuditArchive.objects.values_list("first_checkpoint_id", "last_checkpoint_id"))
    checkpoint_ids = AuditCheckpoint.objects.filter(id__lte=claimed).order_by("id").values_list("id", flat=True)
    for checkpoint_id in checkpoint_ids.iterator(chunk_size=2000):
        if not any(first <= checkpoint_id <= last for first, last in ranges):
            break
        covered = checkpoint_id
    return covered


# Ids between the lowest and the highest that neither an event nor a seal (of a purged event) holds.
SEQUENCE_GAPS_SQL = """
SELECT coalesce(sum(next_id - id - 1), 0) FROM (
    SELECT id, lead(id) OVER (ORDER BY id) AS next_id
    FROM (SELECT id FROM audit_auditevent UNION SELECT event_id FROM audit_auditseal) AS ids
) AS runs WHERE next_id > id + 1
"""


def audit_trail_verify(
    *, progress: Callable[[int], None] | None = None, record: bool = True, actor=None
) -> VerificationReport:
    """Verify the whole trail in the database, record the outcome (sealer only) and raise an alert when it fails.

    `actor` (an `audit.services.events.Actor`) is who the alert names; by
    default the scheduled verification.
    """
    from django.db.models import Exists, OuterRef

    from audit.models import AuditEvent, AuditSeal
    from audit.services.checkpoint_export import export_compare
    from audit.signing import trusted_public_keys

    keys = trusted_public_keys()  # from files: never the key table, which the runtime role can write
    verifier = TrailVerifier(keys, purged_through_checkpoint=purged_through_checkpoint(), progress=progress)
    for checkpoint, seals, events in database_checkpoints():
        verifier.check_checkpoint(checkpoint_document(checkpoint), seals, events)
    floor = drained_floor()
    unsealed = (
        AuditEvent.objects.alias(sealed=Exists(AuditSeal.objects.filter(event_id=OuterRef("id"))))
        .filter(sealed=False)
        .order_by("id")
        .values_list("id", "xact_id")
    )
    verifier.check_unsealed(unsealed.iterator(chunk_size=2000), drained_below_xact_id=floor)
    in_id_order = AuditEvent.objects.order_by("id").values_list("id", "occurred_at")
    verifier.check_event_order(in_id_order.iterator(chunk_size=5000))
    report = verifier.report
    export_compare(report, keys)
    with connection.cursor() as cursor:
        cursor.execute(SEQUENCE_GAPS_SQL)
        report.sequence_gaps = cursor.fetchone()[0]
    verification = _verification_record(report) if record else None
    if not report.passed:
        _failure_alert(report, verification, actor)
    return report


def _verification_record(report: VerificationReport):
    """The outcome as a row, written through the sealer's login: the web's runtime role cannot insert one."""
    from audit.models import AuditVerification

    verification = AuditVerification(
        verified_at=timezone.now(),
        passed=report.passed,
        checkpoints_checked=report.checkpoints_checked,
        events_checked=report.events_checked,
        first_bad_event_id=report.first_bad_event_id,
        detail="\n".join(message for _, message in report.problems[:50]),
    )
    verification.result_signature = verification_signature(verification)
    verification.save(using=settings.AUDIT_SEALER_DATABASE)
    return verification


def _failure_alert(report: VerificationReport, verification, actor) -> None:
    """A failure also leaves the database: an error log line, then the alert service (event, metric, email).

    Security admins are told, since a trail that fails verification was
    written behind the application's back. The log line comes first, so it
    goes out even when the database cannot take the alert.
    """
    from audit.alerts import alert_raise
    from audit.services.events import Actor

    first_bad = report.first_bad_event_id
    logger.error(
        "audit trail verification FAILED",
        extra={"problems": len(report.problems), "first_bad_event_id": first_bad},
    )
    summary = (
        f"Audit trail verification failed: {len(report.problems)} problems, first bad sequence "
        f"{first_bad if first_bad is not None else 'unknown'}. {report.problems[0][1]}"
    )
    with transaction.atomic():
        alert_raise(
            kind="audit_verification_failed",
            summary=summary,
            object_type="audit.verification",
            object_id=str(verification.id) if verification is not None else "",
            role="security_admin",
            actor=actor or Actor.system("audit_verification"),
        )


def _verification_message(verification) -> bytes:
    return json.dumps(
        [
            verification.verified_at.isoformat(),
            verification.passed,
            verification.checkpoints_checked,
            verification.events_checked,
            verification.first_bad_event_id,
            verification.detail,
        ],
        separators=(",", ":"),
    ).encode()


def verification_mac(verification) -> str:
    """HMAC-SHA256 under a key derived from the Django secret: what rows written before the signature carry."""
    return salted_hmac("audit.verification.result", _verification_message(verification), algorithm="sha256").hexdigest()


def verification_signature(verification) -> str:
    """The sealer's Ed25519 signature over the result, with the id of the key that made it.

    Only the sealer holds the signing key (AUDIT_SIGNING_KEY_PATH); the web
    process, which shows the result, checks it against AUDIT_VERIFY_KEY_PATHS.
    """
    from audit.signing import signing_key

    private_key = signing_key()
    signature = integrity.sign(private_key, _verification_message(verification))
    key_id = integrity.key_id_for(integrity.public_key_bytes(private_key))
    return f"{key_id}:{base64.b64encode(signature).decode()}"


def verification_authentic(verification, keys: dict[str, bytes] | None = None) -> bool:
    """Signed by a trusted key; or, for a row from before signatures (no signature at all), its HMAC holds."""
    if not verification.result_signature:
        return bool(verification.result_mac) and hmac.compare_digest(
            verification.result_mac, verification_mac(verification)
        )
    from audit.signing import trusted_public_keys

    key_id, _, encoded = verification.result_signature.partition(":")
    public_key = (trusted_public_keys() if keys is None else keys).get(key_id)
    try:
        signature = base64.b64decode(encoded, validate=True)
    except ValueError:
        return False
    return public_key is not None and integrity.signature_valid(
        public_key, signature, _verification_message(verification)
    )


RECENT_VERIFICATIONS = 200


def verification_summary():
    """(the newest result the application wrote, how many recent rows fail their signature), from one query.

    "Newest" is by the MAC-covered time, so a forged row, or an old genuine one
    copied as a new row, never outranks a newer real result.
    """
    from audit.models import AuditVerification
    from audit.signing import trusted_public_keys

    recent = list(AuditVerification.objects.order_by("-id")[:RECENT_VERIFICATIONS])
    keys = trusted_public_keys()
    authentic = [verification for verification in recent if verification_authentic(verification, keys)]
    latest = max(authentic, key=lambda verification: (verification.verified_at, verification.id), default=None)
    return latest, len(recent) - len(authentic)
