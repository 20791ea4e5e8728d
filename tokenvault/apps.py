from django.apps import AppConfig


class TokenVaultConfig(AppConfig):
    name = "tokenvault"

    def ready(self) -> None:
        from tokenvault import checks  # noqa: F401 (registers the system checks)
