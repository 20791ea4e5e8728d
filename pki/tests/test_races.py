"""Racing real threads on real PostgreSQL: the pki rules that a second worker (or a redelivered task) must not
break. CRL numbers stay unique and gapless under the publisher's lock; a threshold alert is raised once; a
certificate read from its path is recorded once; a revocation racing the daily renewal leaves no renewed
certificate of the revoked key alive. Cost: about 3 s.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from ledger.tests.test_concurrency import run_threads
from pki import expiry, services
from pki.models import Certificate, CertificateExpiryAlert, CrlPublication
from pki.tests.helpers import foreign_certificate_pem

pytestmark = pytest.mark.django_db(transaction=True)


def test_racing_crl_publications_get_consecutive_numbers():
    numbers = run_threads(6, lambda _: services.crl_publish().number)

    assert sorted(numbers) == list(range(1, 7))
    assert CrlPublication.objects.count() == 6


def test_racing_watch_runs_raise_a_threshold_alert_once():
    now = timezone.now()
    pem = foreign_certificate_pem(name="partner.example.org", not_after=now + dt.timedelta(days=10))
    row = services.certificate_record(pem=pem, service="acme-bank", kind="partner", operator=None)

    raised = run_threads(4, lambda _: expiry.certificates_alert_expiring(now=now))

    assert sum(raised) == 1
    assert CertificateExpiryAlert.objects.filter(certificate=row).count() == 1
    assert AuditEvent.objects.filter(event_type="alert.raised", object_id=row.serial).count() == 1


def test_racing_watch_runs_record_an_external_certificate_once(settings, tmp_path):
    path = tmp_path / "public-server.pem"
    path.write_text(foreign_certificate_pem(name="api.example.com", not_after=timezone.now() + dt.timedelta(days=90)))
    settings.PKI_EXTERNAL_CERTIFICATE_PATHS = [str(path)]

    recorded = run_threads(4, lambda _: expiry.external_certificates_sync())

    assert sum(recorded) == 1
    assert Certificate.objects.filter(service="external-public-server").count() == 1
    assert AuditEvent.objects.filter(event_type="pki.certificate_recorded").count() == 1


def test_a_revocation_racing_the_daily_renewal_leaves_no_certificate_of_the_key_alive():
    row, _ = services.certificate_issue(service="api", sans=["api.internal.example"], days=40, operator=None)
    due = timezone.now() + dt.timedelta(days=20)

    def work(index: int):
        if index == 0:
            return services.certificate_revoke(serial=row.serial, reason="keyCompromise", operator=None)
        return expiry.certificates_renew_due(now=due)

    run_threads(2, work)

    alive = Certificate.objects.filter(service="api").exclude(status="revoked")
    assert list(alive.values_list("serial", flat=True)) == []
