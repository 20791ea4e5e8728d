from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    # Postings are the ledger's history: INSERT and SELECT only for the runtime role
    # (fintech/db_privileges.py), and triggers refuse UPDATE/DELETE/TRUNCATE for everyone.
    write_once_models = ("Posting",)
