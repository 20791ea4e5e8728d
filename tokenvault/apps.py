from django.apps import AppConfig


class TokenVaultConfig(AppConfig):
    name = "tokenvault"
    # A spent staff grant stays spent: the vault's runtime role may insert one, never update or delete it.
    write_once_models = ("UsedStaffGrant",)

    def ready(self) -> None:
        from tokenvault import checks  # noqa: F401 (registers the system checks)
