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


def test_a_verification_result_is_signed_by_the_sealer_and_one_signed_by_another_key_is_not_authentic():
    """Issue 12, item 4: results are signed by the sealer's key, checked against the configured public keys."""
    import base64

    from audit import integrity
    from audit.models import AuditVerification
    from audit.services.verification import _verification_message, verification_authentic

    record_event(1)
    audit_events_seal()
    assert audit_trail_verify().passed
    genuine = AuditVerification.objects.get()
    key_id, _, _ = genuine.result_signature.partition(":")
    assert key_id in trusted_public_keys() and genuine.result_mac == "" and verification_authentic(genuine)

    insider_key = Ed25519PrivateKey.generate()
    forged = AuditVerification(
        verified_at=genuine.verified_at, passed=True, checkpoints_checked=999, events_checked=999, detail=""
    )
    signature = base64.b64encode(integrity.sign(insider_key, _verification_message(forged))).decode()
    for claimed_key_id in (integrity.key_id_for(integrity.public_key_bytes(insider_key)), key_id):
        forged.result_signature = f"{claimed_key_id}:{signature}"
        assert not verification_authentic(forged)
    genuine.detail = "edited"
    assert not verification_authentic(genuine)
