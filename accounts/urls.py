"""Customer-facing API of the accounts domain, mounted under /v1/."""

from django.urls import path

from accounts.apis import MeApi
from accounts.cards.apis import card_urlpatterns
from accounts.identity_apis import MeIdentityApi
from accounts.partner_apis import partner_urlpatterns

app_name = "accounts"
urlpatterns = [
    path("me", MeApi.as_view(), name="me"),
    path("me/identity", MeIdentityApi.as_view(), name="me_identity"),
    *partner_urlpatterns,
    *card_urlpatterns,
]
