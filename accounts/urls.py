"""Customer-facing API of the accounts domain, mounted under /v1/."""

app_name = "accounts"
urlpatterns: list = []
