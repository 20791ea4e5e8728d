from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles(sender, using="default", **kwargs) -> None:
    if using != "default":
        return
    from accounts.services import roles_sync

    roles_sync()


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        # After every app has migrated, so permissions of all apps exist.
        post_migrate.connect(_sync_roles, dispatch_uid="accounts.roles_sync")
