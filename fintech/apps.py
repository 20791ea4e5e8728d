from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PlatformConfig(AppConfig):
    """The project package as an app: cross-cutting checks, static files, database privileges."""

    name = "fintech"
    label = "fintech"
    # Stored answers: SELECT and INSERT only for the runtime role; expired ones are purged by the owner's
    # function (migrations/0004). A deleted record would let a retry move money twice (issue 12).
    write_once_models = ("IdempotencyRecord",)
    # Written only by migrate (as the owner): what a permission or a role IS. The runtime role reads them; a
    # swapped codename or content type would hand one role's power to another without any access change
    # on record (issue 12, insider review). "app_label.Model": Django's own apps, listed here.
    runtime_read_only_models = ("auth.Permission", "auth.Group", "contenttypes.ContentType")

    def ready(self) -> None:
        from fintech import checks  # noqa: F401 - registers system checks
        from fintech.db_privileges import grant_runtime_privileges

        post_migrate.connect(grant_runtime_privileges, sender=self, dispatch_uid="fintech.grant_runtime_privileges")
