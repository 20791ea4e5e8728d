from django.apps import AppConfig


class PkiConfig(AppConfig):
    """The platform CA (issue 14, ADR 0018): certificates issued, renewed, revoked and watched."""

    name = "pki"
    verbose_name = "Platform certificates"

    def ready(self) -> None:
        from fintech.metrics import scrape_collector_register
        from pki.metrics import CertificateExpiryCollector

        scrape_collector_register(CertificateExpiryCollector())
