from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    # Postings are the ledger's history: INSERT and SELECT only for the runtime role
    # (fintech/db_privileges.py), and triggers refuse UPDATE/DELETE/TRUNCATE for everyone.
    write_once_models = ("Posting",)
    # Money tables: SELECT only for the runtime role, which changes them through these SECURITY DEFINER
    # functions (ledger/sql/, fintech/db_privileges.py, ADR 0016). Every other ledger_* function is the
    # definer's alone.
    definer_only_models = ("LedgerAccount", "Transfer", "Posting", "Hold")
    definer_functions = (
        "ledger_transfer_create",
        "ledger_movement_post",
        "ledger_hold_open",
        "ledger_hold_release",
        "ledger_account_open",
        "ledger_account_status_set",
        "ledger_accounts_lock",
        "ledger_holds_lock",
        "ledger_transfers_lock",
    )
    # Outbox messages: recipient, topic and payload are written once; the worker moves only the delivery state.
    state_only_models = {"OutboxMessage": ("status", "attempts", "next_attempt_at", "last_error", "delivered_at")}
    # The policy step's functions run as their caller (they write only policy counters).
    runtime_functions = ("ledger_policy_check", "ledger_policy_count", "ledger_policy_release")

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from ledger import checks  # noqa: F401 - registers the definer check (check --deploy --database default)
        from ledger.models import TransferLimit, TransferRule

        # Staff edits of limits and rules are model changes on record. Accounts are not registered: they
        # change only inside the ledger's functions, which write their own events (`ledger.account.opened`,
        # `.status_changed`) in the same statement; auditlog, listening to the ORM, would never see them.
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
