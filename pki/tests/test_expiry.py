"""The daily watch with the clock moved (now=, never sleep): renew once under a race, alert once per threshold."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from cryptography import x509
from django.db import connection, connections
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from pki import expiry
from pki.admin import days_left_colour
from pki.models import Certificate, CertificateExpiryAlert
from pki.services import certificate_issue, certificate_record, certificate_renew, crl_publish
from pki.tests.helpers import foreign_certificate_pem


@pytest.mark.django_db(transaction=True)
def test_two_racing_renewal_runs_renew_a_due_certificate_exactly_once():
    row, _key = certificate_issue(service="vault", sans=["vault.internal.example"], days=90, operator=None)
    far = certificate_issue(service="api", sans=["api.internal.example"], days=200, operator=None)[0]
    moved = timezone.now() + dt.timedelta(days=70)  # 20 days left: inside the 30-day window
    barrier, results, errors = threading.Barrier(2), [], []

    def racer() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(expiry.certificates_renew_due(now=moved))
        except Exception as error:  # reported below, not lost in the thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=racer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sorted(len(renewed) for renewed in results) == [0, 1]
    row.refresh_from_db()
    assert row.status == "superseded" and row.replaced_by.serial == next(r for r in results if r)[0]
    assert Certificate.objects.filter(service="vault").count() == 2
    assert AuditEvent.objects.filter(event_type="pki.certificate_renewed").count() == 1
    new = row.replaced_by
    assert new.not_before < row.not_after and new.not_after - new.not_before == row.not_after - row.not_before
    far.refresh_from_db()
    assert far.status == "active" and far.replaced_by is None  # not due
    assert expiry.certificates_renew_due(now=moved) == []  # the next day's run finds nothing left


@pytest.mark.django_db(transaction=True)
def test_a_row_another_worker_holds_is_skipped_not_waited_for():
    row, _key = certificate_issue(service="vault", sans=["vault.internal.example"], days=90, operator=None)
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT 1 FROM pki_certificate WHERE id = %s FOR UPDATE", [row.pk])
            assert certificate_renew(serial=row.serial, operator=None, skip_locked=True) is None
            cursor.execute("ROLLBACK")
    finally:
        other.close()
    row.refresh_from_db()
    assert row.status == "active"


@pytest.mark.django_db
def test_a_certificate_the_platform_cannot_renew_alerts_once_at_each_threshold():
    start = timezone.now()
    pem = foreign_certificate_pem(name="partner.example.org", not_after=start + dt.timedelta(days=40))
    row = certificate_record(pem=pem, service="acme-bank", kind="partner", operator=None)

    raised = [
        expiry.certificates_alert_expiring(now=start + dt.timedelta(days=offset))
        for offset in (5, 11, 12, 27, 27.5, 34, 39.5, 39.9, 45)
    ]

    assert raised == [0, 1, 0, 1, 0, 1, 1, 0, 0]
    assert sorted(CertificateExpiryAlert.objects.filter(certificate=row).values_list("threshold_days", flat=True)) == [
        1, 7, 14, 30
    ]  # fmt: skip
    alerts = AuditEvent.objects.filter(event_type="alert.raised", object_id=row.serial)
    assert alerts.count() == 4
    assert all(event.payload["kind"] == "pki.certificate_expiring" for event in alerts)
    assert expiry.certificates_renew_due(now=start + dt.timedelta(days=39)) == []  # never renewed: not ours
    row.refresh_from_db()
    assert row.status == "active"


@pytest.mark.django_db
def test_a_certificate_first_seen_late_alerts_only_at_its_tightest_threshold():
    start = timezone.now()
    pem = foreign_certificate_pem(name="api.fintech.example", not_after=start + dt.timedelta(days=5))
    row = certificate_record(pem=pem, service="public-https", kind="external", operator=None)

    assert expiry.certificates_alert_expiring(now=start) == 1
    assert expiry.certificates_alert_expiring(now=start + dt.timedelta(days=1)) == 0

    assert list(row.expiry_alerts.values_list("threshold_days", flat=True)) == [7]


@pytest.mark.django_db
def test_the_crl_lists_revoked_certificates_and_a_stale_crl_alerts_once(settings, tmp_path):
    from pki.services import certificate_revoke

    settings.PKI_CRL_PATH = str(tmp_path / "crl.pem")
    kept = certificate_issue(service="api", sans=["api.internal.example"], days=30, operator=None)[0]
    gone = certificate_issue(service="vault", sans=["vault.internal.example"], days=30, operator=None)[0]
    now = timezone.now()

    certificate_revoke(serial=gone.serial, reason="cessationOfOperation", operator=None, now=now)

    crl = x509.load_pem_x509_crl((tmp_path / "crl.pem").read_bytes())
    assert crl.next_update_utc == now.replace(microsecond=0) + dt.timedelta(days=7)
    assert crl.get_revoked_certificate_by_serial_number(int(gone.serial, 16)) is not None
    assert crl.get_revoked_certificate_by_serial_number(int(kept.serial, 16)) is None
    assert (tmp_path / "crl.pem").stat().st_mode & 0o777 == 0o644

    assert expiry.crl_alert_stale(now=now + dt.timedelta(days=4)) is False  # 3 days left
    assert expiry.crl_alert_stale(now=now + dt.timedelta(days=5, hours=1)) is True
    assert expiry.crl_alert_stale(now=now + dt.timedelta(days=6)) is False  # once per publication
    assert AuditEvent.objects.filter(event_type="alert.raised", object_type="pki.crl").count() == 1
    later = crl_publish(now=now + dt.timedelta(days=6))
    assert later.number == 2 and expiry.crl_alert_stale(now=now + dt.timedelta(days=6)) is False


@pytest.mark.django_db
def test_metrics_show_seconds_to_expiry_per_certificate(settings):
    settings.METRICS_TOKEN = ""
    row = certificate_issue(service="vault", sans=["vault.internal.example"], days=30, operator=None)[0]

    body = Client().get("/metrics").content.decode()

    line = next(line for line in body.splitlines() if line.startswith("pki_certificate_seconds_to_expiry{"))
    assert f'serial="{row.serial}"' in line and 'service="vault"' in line
    assert 29 * 86400 < float(line.rsplit(" ", 1)[1]) <= 30 * 86400


def test_days_left_colours():
    assert [days_left_colour(days) for days in (-1, 7, 8, 30, 31)] == ["red", "red", "amber", "amber", "green"]


@pytest.mark.django_db
def test_security_admins_see_the_certificates_page_colour_coded_and_others_get_403(client):
    from accounts.tests.mfa_helpers import force_login_with_mfa
    from accounts.tests.operator_helpers import operator_create

    soon = certificate_issue(service="vault", sans=["vault.internal.example"], days=5, operator=None)[0]
    later = certificate_issue(service="api", sans=["api.internal.example"], days=90, operator=None)[0]
    certificate_renew(serial=later.serial, operator=None)  # `later` is now superseded: grey, whatever its days
    url = "/admin/pki/certificate/"

    force_login_with_mfa(client, operator_create(email="sec@example.com", roles=["security_admin"]))
    page = client.get(url)

    assert page.status_code == 200
    text = page.content.decode()
    assert soon.subject_cn in text and later.subject_cn in text
    assert 'class="pki-days-red"' in text and 'class="pki-days-green"' in text
    assert 'class="pki-days-grey"' in text and "(superseded by a renewal)" in text
    assert client.get(f"/admin/pki/certificate/{soon.pk}/delete/").status_code == 403
    assert client.get("/admin/pki/certificate/add/").status_code == 403

    other = Client()
    force_login_with_mfa(other, operator_create(email="ops@example.com", roles=["operations"]))
    assert other.get(url).status_code == 403


@pytest.mark.django_db
def test_the_public_server_certificate_read_from_its_path_is_watched_and_its_replacement_supersedes_it(
    settings, tmp_path
):
    start = timezone.now()
    path = tmp_path / "public-server.pem"
    settings.PKI_EXTERNAL_CERTIFICATE_PATHS = [str(path), str(tmp_path / "missing.pem")]
    path.write_text(foreign_certificate_pem(name="api.example.com", not_after=start + dt.timedelta(days=10)))

    assert expiry.external_certificates_sync() == 1
    assert expiry.external_certificates_sync() == 0  # the same file: recorded once
    first = Certificate.objects.get(service="external-public-server")
    assert first.kind == "external" and first.subject_cn == "api.example.com"
    assert expiry.certificates_alert_expiring(now=start) == 1  # within 14 days, and nobody here can renew it

    path.write_text(foreign_certificate_pem(name="api.example.com", not_after=start + dt.timedelta(days=90)))
    assert expiry.external_certificates_sync() == 1
    first.refresh_from_db()
    assert first.status == "superseded"
    assert Certificate.objects.filter(service="external-public-server", status="active").count() == 1
