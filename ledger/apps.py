from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    # Postings are the ledger's history: INSERT and SELECT only for the runtime role
    # (fintech/db_privileges.py), and triggers refuse UPDATE/DELETE/TRUNCATE for everyone.
    write_once_models = ("Posting",)

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from ledger.models import LedgerAccount, TransferLimit, TransferRule

        # Opening, blocking and closing accounts, and staff edits of limits and rules,
        # are model changes on record. Balances are not: postings are their history
        # (and they change through UPDATE ... RETURNING, which auditlog would not see).
        auditlog.register(LedgerAccount, include_fields=["status", "kind", "currency", "credit_limit_minor", "owner"])
        auditlog.register(TransferLimit)
        auditlog.register(TransferRule)

        from audit.alerts import alert_channel_register
        from ledger.outbox.services import outbox_alert_record

        # Alerts (audit.alerts) reach the role on duty by email through the outbox.
        alert_channel_register(outbox_alert_record)

        from django.conf import settings

        if settings.SERVICE_ROLE != "vault":  # no staff, admin or sessions there
            from ledger.services import four_eyes

            four_eyes.register()  # large deposits, limits, rules, big review approvals: a second person (ADR 0015)
