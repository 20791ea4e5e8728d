"""`pki_certificate_seconds_to_expiry{serial,service}`: computed from the database at scrape time.

Why at scrape time rather than a Gauge a task sets: the value is exact at
every scrape (a stopped worker cannot freeze it), and it needs no shared
multiprocess state between the worker and gunicorn. Registered with
`fintech.metrics.scrape_collector_register` from PkiConfig.ready().
"""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from pki.models import Certificate, CrlPublication

logger = logging.getLogger(__name__)
MAX_SERIES = 500


class CertificateExpiryCollector:
    """Seconds to expiry of each active certificate (negative once expired), and of the newest CRL."""

    def collect(self):
        now = timezone.now()
        certificates = GaugeMetricFamily(
            "pki_certificate_seconds_to_expiry",
            "Seconds until an active certificate's not-after (negative: expired).",
            labels=["serial", "service"],
        )
        crl = GaugeMetricFamily("pki_crl_seconds_to_next_update", "Seconds until the published CRL's nextUpdate.")
        try:
            rows = Certificate.objects.filter(status=Certificate.Status.ACTIVE).order_by("not_after")[:MAX_SERIES]
            for serial, service, not_after in rows.values_list("serial", "service", "not_after"):
                certificates.add_metric([serial, service], (not_after - now).total_seconds())
            newest = CrlPublication.objects.order_by("-number").values_list("next_update", flat=True).first()
        except DatabaseError:
            logger.warning("pki metrics: the database did not answer")
            return
        yield certificates
        if newest is not None:
            crl.add_metric([], (newest - now).total_seconds())
            yield crl
