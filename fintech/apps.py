from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PlatformConfig(AppConfig):
    """The project package as an app: cross-cutting checks, static files, database privileges."""

    name = "fintech"
    label = "fintech"

    def ready(self) -> None:
        from fintech import checks  # noqa: F401 - registers system checks
        from fintech.db_privileges import grant_runtime_privileges

        post_migrate.connect(grant_runtime_privileges, sender=self, dispatch_uid="fintech.grant_runtime_privileges")
