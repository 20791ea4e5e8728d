from django.apps import AppConfig


class TokenVaultConfig(AppConfig):
    name = "tokenvault"
