"""The audit trail's trust root is outside the database (issue 12, item 3, first part).

An insider with the runtime role's login can insert into `audit_auditsigningkey`
and sign a checkpoint with their own key, chained onto the last real one.
Verification trusts only the public keys in AUDIT_VERIFY_KEY_PATHS, so that
checkpoint fails, and so does every later real one that chains onto it.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.models import AuditCheckpoint, AuditSigningKey
from audit.services import sealing
from audit.services.sealing import audit_events_seal
from audit.services.verification import audit_trail_verify
from audit.signing import trusted_public_keys
from audit.tests.factories import record_event

pytestmark = pytest.mark.django_db


def test_a_checkpoint_signed_with_a_key_registered_only_in_the_database_fails_verification(monkeypatch):
    record_event(1)
    audit_events_seal()
    assert audit_trail_verify(record=False).passed

    insider_key = Ed25519PrivateKey.generate()
    with monkeypatch.context() as patched:
        patched.setattr(sealing, "signing_key", lambda: insider_key)
        record_event(2)
        audit_events_seal()  # registers the insider's public key in the table and signs with it
    forged = AuditCheckpoint.objects.order_by("-id").first()
    assert AuditSigningKey.objects.count() == 2 and forged.signing_key_id not in trusted_public_keys()

    report = audit_trail_verify(record=False)
    assert not report.passed
    assert any(f"checkpoint {forged.id}: signature invalid" in message for _, message in report.problems)


def test_the_verifier_trusts_the_configured_files_and_the_genuine_key_is_among_them():
    record_event(1)
    audit_events_seal()
    checkpoint = AuditCheckpoint.objects.get()
    assert checkpoint.signing_key_id in trusted_public_keys()
