"""The token vault's routes in the API role, mounted under /v1/ (the vault role's own are in internal_urls.py)."""

from django.urls import path

from tokenvault.apis import DetokenizeApi

app_name = __package__
urlpatterns = [
    path("vault/detokenize", DetokenizeApi.as_view(), name="detokenize"),
]
