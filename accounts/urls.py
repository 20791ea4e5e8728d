"""Customer-facing API of the accounts domain, mounted under /v1/."""

from django.urls import path

from accounts.apis import MeApi

app_name = "accounts"
urlpatterns = [
    path("me", MeApi.as_view(), name="me"),
]
