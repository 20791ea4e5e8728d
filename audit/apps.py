from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    # Insert-only for the runtime role, and UPDATE/DELETE/TRUNCATE refused by triggers.
    write_once_models = (
        "AuditEvent",
        "AuditCheckpoint",
        "AuditSeal",
        "AuditSigningKey",
        "AuditArchive",
        "AuditVerification",
    )

    def ready(self) -> None:
        from audit import receivers  # noqa: F401 - connects login and auditlog signals
