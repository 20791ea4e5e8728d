"""`tls_dev_certificates`: the certificate set `make run` puts the vault behind its terminator with.

The first run issues (through pki.services: rows and audit events) and writes keys 0600 in a 0700 directory; a
second run issues and writes nothing; a renewal by the daily job is picked up without issuing; production
settings and a process without the issuing key are refused before anything is written.
Cost: under 1 s (four ECDSA signatures, no server).
"""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest
from cryptography import x509
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from pki import ca, services
from pki.dev_certificates import API_VAULT_CLIENT, CA_BUNDLE, DEV_LEAVES, VAULT_SERVER
from pki.models import Certificate, CrlPublication


@pytest.fixture
def tls_dir(tmp_path, settings) -> Path:
    settings.PKI_TLS_DIR = str(tmp_path / "tls")
    settings.PKI_CRL_PATH = str(tmp_path / "crl.pem")
    return tmp_path / "tls"


def _run() -> str:
    stdout = io.StringIO()
    call_command("tls_dev_certificates", stdout=stdout, stderr=io.StringIO())
    return stdout.getvalue()


def _files(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in sorted(directory.iterdir())}


@pytest.mark.django_db
def test_the_first_run_issues_the_set_and_the_second_issues_nothing(tls_dir):
    first = _run()

    assert "issued vault-server" in first and "issued api-client" in first and "published CRL 1" in first
    assert stat.S_IMODE(tls_dir.stat().st_mode) == 0o700
    assert {stat.S_IMODE(leaf.key_path(tls_dir).stat().st_mode) for leaf in DEV_LEAVES} == {0o600}
    assert (tls_dir / CA_BUNDLE).read_text() == ca.chain_pem()
    server = x509.load_pem_x509_certificate(VAULT_SERVER.certificate_path(tls_dir).read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost", "vault.internal.example"]
    row = Certificate.objects.get(serial=ca.serial_hex(server))
    assert (row.service, row.status, row.issued_by) == ("vault-terminator", Certificate.Status.ACTIVE, None)
    assert AuditEvent.objects.filter(event_type="pki.certificate_issued", object_id=row.serial).count() == 1
    written, certificates, events = _files(tls_dir), Certificate.objects.count(), AuditEvent.objects.count()

    second = _run()

    assert second == ""
    assert _files(tls_dir) == written  # not even rewritten
    assert (Certificate.objects.count(), AuditEvent.objects.count()) == (certificates, events)
    assert CrlPublication.objects.count() == 1


@pytest.mark.django_db
def test_a_renewal_by_the_daily_job_is_written_without_issuing(tls_dir):
    _run()
    old = x509.load_pem_x509_certificate(API_VAULT_CLIENT.certificate_path(tls_dir).read_bytes())
    key = API_VAULT_CLIENT.key_path(tls_dir).read_bytes()
    renewed = services.certificate_renew(serial=ca.serial_hex(old), operator=None)
    certificates = Certificate.objects.count()

    output = _run()

    assert output == f"rewrote api-client with its renewal (serial {renewed.serial})\n"
    written = x509.load_pem_x509_certificate(API_VAULT_CLIENT.certificate_path(tls_dir).read_bytes())
    assert ca.serial_hex(written) == renewed.serial
    assert API_VAULT_CLIENT.key_path(tls_dir).read_bytes() == key  # a renewal keeps the key pair
    assert Certificate.objects.count() == certificates


@pytest.mark.django_db
def test_production_settings_and_a_process_without_the_issuing_key_are_refused(tls_dir, settings):
    settings.PKI_KEY_GENERATE = False  # what fintech/settings/production.py says
    with pytest.raises(CommandError, match="dev_certificates_refused"):
        _run()
    settings.PKI_KEY_GENERATE, settings.PKI_ISSUING_KEY_PATH = True, ""  # e.g. FINTECH_PROCESS=web
    with pytest.raises(CommandError, match=r"issuing_key_not_held: .* certworker"):
        _run()

    assert not tls_dir.exists()
    assert not Certificate.objects.exists()
