"""The platform CA's chain: a constrained intermediate, SANs outside it refused, the key in the cert worker alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from django.conf import settings

from audit.models import AuditEvent
from conftest import ROOT
from pki import ca
from pki.exceptions import SanNotPermitted
from pki.models import Certificate
from pki.services import certificate_issue


def test_the_intermediate_is_name_constrained_with_pathlen_0_under_the_root():
    issuing = ca.issuing_ca_load()
    root = x509.load_pem_x509_certificate(Path(settings.PKI_ROOT_CERT_PATH).read_bytes())

    constraints = issuing.certificate.extensions.get_extension_for_class(x509.NameConstraints)
    basic = issuing.certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and basic.critical
    assert [s.value for s in constraints.value.permitted_subtrees] == list(settings.PKI_PERMITTED_DNS_DOMAINS)
    assert basic.value.ca is True and basic.value.path_length == 0
    issuing.certificate.verify_directly_issued_by(root)
    key_path = Path(settings.PKI_ISSUING_KEY_PATH)
    assert key_path.stat().st_mode & 0o777 == 0o600
    assert (key_path.parent / "root-ca.key.pem").stat().st_mode & 0o777 == 0o600


@pytest.mark.django_db
def test_a_san_outside_the_permitted_domains_is_refused_and_nothing_is_recorded():
    with pytest.raises(SanNotPermitted, match=r"bank\.example\.com is outside"):
        certificate_issue(service="vault", sans=["vault.internal.example", "bank.example.com"], days=30, operator=None)
    with pytest.raises(SanNotPermitted):  # a suffix that only looks like a permitted domain
        certificate_issue(service="vault", sans=["evilinternal.example"], days=30, operator=None)

    assert not Certificate.objects.exists()
    assert not AuditEvent.objects.filter(event_type__startswith="pki.").exists()


@pytest.mark.django_db
def test_an_issued_leaf_verifies_under_the_intermediate_and_its_key_is_not_in_the_database():
    row, key_pem = certificate_issue(service="vault", sans=["vault.internal.example"], days=30, operator=None)

    leaf = x509.load_pem_x509_certificate(row.certificate_pem.encode())
    leaf.verify_directly_issued_by(ca.issuing_ca_load().certificate)
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    ) == ["vault.internal.example"]
    assert row.fingerprint_sha256 == ca.fingerprint_sha256(leaf) and row.serial == format(leaf.serial_number, "x")
    assert b"PRIVATE KEY" in key_pem
    body = key_pem.decode().splitlines()[1]
    assert not Certificate.objects.filter(certificate_pem__contains=body).exists()
    assert not AuditEvent.objects.filter(payload__icontains=body).exists()


_WEB_REPORT = """
import json, django
django.setup()
from django.conf import settings
from fintech.process_keys import keys_held
from pki import ca
from pki.exceptions import IssuingKeyNotHeld
try:
    ca.issuing_ca_load()
    loaded = True
except IssuingKeyNotHeld:
    loaded = False
print(json.dumps({"path": settings.PKI_ISSUING_KEY_PATH, "generate": settings.PKI_KEY_GENERATE,
                  "held": sorted(keys_held(settings)), "loaded": loaded}))
"""


@pytest.mark.parametrize("process", ["web", "worker", "ops", "beat"])
def test_no_process_but_the_cert_worker_loads_the_issuing_key(process, tmp_path):
    environment = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "fintech.settings.test",
                   "FINTECH_PROCESS": process, "FINTECH_VAR_DIR": str(tmp_path / "var")}  # fmt: skip

    result = subprocess.run(
        [sys.executable, "-c", _WEB_REPORT], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"path": "", "generate": False, "held": report["held"], "loaded": False}
    assert "pki_issuing_key" not in report["held"]
    assert not (tmp_path / "var" / "keys" / "pki").exists()  # nothing generated either


@pytest.mark.django_db
def test_revoking_a_renewed_certificate_revokes_every_certificate_of_its_key_unless_merely_superseded():
    """A renewal re-certifies the same key: an older (or newer) certificate of it would open the same doors."""
    from pki.services import certificate_renew, certificate_revoke

    first, _ = certificate_issue(service="api", sans=["api.internal.example"], days=30, operator=None)
    second = certificate_renew(serial=first.serial, operator=None)
    third = certificate_renew(serial=second.serial, operator=None)

    certificate_revoke(serial=second.serial, reason="keyCompromise", operator=None)

    statuses = dict(Certificate.objects.filter(pk__in=[first.pk, second.pk, third.pk]).values_list("serial", "status"))
    assert set(statuses.values()) == {"revoked"}
    crl = x509.load_pem_x509_crl(Path(settings.PKI_CRL_PATH).read_bytes())
    assert {format(entry.serial_number, "x") for entry in crl} >= {first.serial, second.serial, third.serial}

    other, _ = certificate_issue(service="api", sans=["api.internal.example"], days=30, operator=None)
    renewed = certificate_renew(serial=other.serial, operator=None)
    certificate_revoke(serial=other.serial, reason="superseded", operator=None)
    renewed.refresh_from_db()
    assert renewed.status == "active"
