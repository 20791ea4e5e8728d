"""cert_* commands end to end: the operator signs in, the real worker signs on the `cert` queue, files and CRL."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.tests.operator_helpers import operator_create, operator_stdin
from audit.models import AuditEvent
from pki.models import Certificate, CrlPublication
from pki.services import certificate_issue, certificate_record
from pki.tests.helpers import foreign_certificate_pem


def run(name: str, *arguments: str, operator=None) -> str:
    stdout = io.StringIO()
    options = {"stdin": operator_stdin(operator)} if operator is not None else {}
    call_command(name, *arguments, stdout=stdout, stderr=io.StringIO(), **options)
    return stdout.getvalue()


@pytest.mark.django_db(transaction=True)
def test_issue_renew_and_revoke_go_through_the_cert_worker_and_are_audited(cert_worker_process, tmp_path):
    operator = operator_create(roles=["security_admin"])

    output = run("cert_issue", "vault", "--san", "vault.internal.example", "--days", "60", "--out", str(tmp_path),
                 operator=operator)  # fmt: skip

    row = Certificate.objects.get()
    assert output.startswith(f"issued {row.serial} for vault")
    assert row.issued_by_id == operator.pk and row.kind == "issued" and row.status == "active"
    key_file, cert_file = tmp_path / f"{row.serial}.key.pem", tmp_path / f"{row.serial}.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600
    leaf = x509.load_pem_x509_certificate(cert_file.read_bytes())
    assert load_pem_private_key(key_file.read_bytes(), None).public_key() == leaf.public_key()
    issuing = x509.load_pem_x509_certificates((tmp_path / f"{row.serial}.chain.pem").read_bytes())[0]
    leaf.verify_directly_issued_by(issuing)
    issued = AuditEvent.objects.get(event_type="pki.certificate_issued")
    assert issued.actor_staff == str(operator.public_id) and issued.object_id == row.serial
    key_body = key_file.read_text().splitlines()[1]
    assert not Certificate.objects.filter(certificate_pem__contains=key_body).exists()

    run("cert_renew", row.serial, operator=operator)

    row.refresh_from_db()
    new = row.replaced_by
    assert row.status == "superseded" and new.status == "active" and new.not_before < row.not_after  # overlap
    assert x509.load_pem_x509_certificate(new.certificate_pem.encode()).public_key() == leaf.public_key()
    assert AuditEvent.objects.get(event_type="pki.certificate_renewed").actor_staff == str(operator.public_id)

    run("cert_revoke", new.serial, "--reason", "keyCompromise", operator=operator)

    new.refresh_from_db()
    assert new.status == "revoked" and new.revocation_reason == "keyCompromise"
    revoked_events = AuditEvent.objects.filter(event_type="pki.certificate_revoked")
    assert {event.actor_staff for event in revoked_events} == {str(operator.public_id)}
    # The superseded certificate holds the same compromised key: revoked with it.
    assert {event.object_id for event in revoked_events} == {new.serial, row.serial}
    publication = CrlPublication.objects.get()
    crl = x509.load_pem_x509_crl(Path(publication.path).read_bytes())
    assert crl.is_signature_valid(issuing.public_key())
    entry = crl.get_revoked_certificate_by_serial_number(int(new.serial, 16))
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    assert crl.get_revoked_certificate_by_serial_number(int(row.serial, 16)) is not None


@pytest.mark.django_db(transaction=True)
def test_the_worker_refuses_a_san_outside_the_constraints_and_writes_nothing(cert_worker_process, tmp_path):
    operator = operator_create(roles=["security_admin"])

    with pytest.raises(CommandError, match=r"san_not_permitted: bank\.example\.com is outside"):
        run("cert_issue", "vault", "--san", "bank.example.com", "--out", str(tmp_path), operator=operator)

    assert not Certificate.objects.exists() and list(tmp_path.iterdir()) == []
    # What was asked, and by whom, is on the record: an attempt at a public name is not invisible.
    refused = AuditEvent.objects.get(event_type__startswith="pki.")
    assert refused.event_type == "pki.request_refused" and refused.actor_staff == str(operator.public_id)
    assert refused.payload["code"] == "san_not_permitted" and refused.payload["args"]["sans"] == ["bank.example.com"]


@pytest.mark.django_db
def test_an_operator_without_the_permission_is_refused_before_anything_is_sent(tmp_path):
    operator = operator_create(roles=["operations"])

    with pytest.raises(CommandError, match=r"does not hold pki\.manage_certificates"):
        run("cert_issue", "vault", "--san", "vault.internal.example", "--out", str(tmp_path), operator=operator)

    assert not Certificate.objects.exists()


@pytest.mark.django_db
def test_cert_check_fails_when_an_active_certificate_expires_within_the_window():
    row, _key = certificate_issue(service="api", sans=["api.internal.example"], days=10, operator=None)

    with pytest.raises(CommandError) as failed:
        run("cert_check", "--within", "30")
    assert failed.value.returncode == 1

    assert "no active certificate expires within 5 days" in run("cert_check", "--within", "5")
    listing = run("cert_list")
    assert row.serial in listing and row.fingerprint_sha256 in listing and "\t9\tactive" in listing


@pytest.mark.django_db
def test_cert_check_passes_when_nothing_expires_within_the_window_and_counts_external_ones():
    certificate_issue(service="api", sans=["api.internal.example"], days=90, operator=None)
    assert "no active certificate" in run("cert_check", "--within", "30")

    pem = foreign_certificate_pem(name="api.fintech.example", not_after=timezone.now() + dt.timedelta(days=10))
    certificate_record(pem=pem, service="public-https", kind="external", operator=None)  # 10 days left

    with pytest.raises(CommandError, match="1 active certificates expire within 30 days"):
        run("cert_check", "--within", "30")


@pytest.mark.django_db(transaction=True)
def test_the_cert_worker_signs_nothing_for_a_message_without_a_valid_unused_grant(cert_worker_process):
    """Anyone who can write to the broker (a web host) could enqueue a revocation in an operator's name: the
    worker believes only a grant `ops` signed for this very command and these arguments, once."""
    from django.conf import settings

    from pki import tasks
    from pki.commands import cert_grant

    operator = operator_create(roles=["security_admin"])
    row, _key = certificate_issue(service="api", sans=["api.internal.example"], days=30, operator=None)

    def revoke(grant: str) -> dict:
        result = tasks.certificate_revoke.apply_async(args=(row.serial, "keyCompromise", grant))
        try:
            return result.get(timeout=settings.PKI_TASK_TIMEOUT_SECONDS)
        finally:
            result.forget()

    assert revoke("forged.grant")["error"] == "staff_grant_refused"
    other_args = cert_grant("cert_revoke", {"serial": row.serial, "reason": "superseded"}, operator)
    assert revoke(other_args)["error"] == "staff_grant_refused"
    row.refresh_from_db()
    assert row.status == "active"

    grant = cert_grant("cert_revoke", {"serial": row.serial, "reason": "keyCompromise"}, operator)
    assert revoke(grant)["status"] == "revoked"
    assert revoke(grant)["error"] == "staff_grant_refused"  # used once
