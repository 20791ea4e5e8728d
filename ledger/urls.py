"""Customer-facing ledger API, mounted under /v1/."""

from django.urls import path

from ledger import apis

app_name = "ledger"
urlpatterns = [
    path("accounts", apis.AccountListCreateApi.as_view(), name="accounts"),
    path("accounts/<uuid:account_id>", apis.AccountDetailApi.as_view(), name="account"),
    path("accounts/<uuid:account_id>/entries", apis.AccountEntriesApi.as_view(), name="account-entries"),
    path("accounts/<uuid:account_id>/statement.csv", apis.AccountStatementCsvApi.as_view(), name="account-statement"),
    path("transfers", apis.TransferCreateApi.as_view(), name="transfers"),
    path("transfers/<uuid:transfer_id>", apis.TransferDetailApi.as_view(), name="transfer"),
    path("transfers/<uuid:transfer_id>/reverse", apis.TransferReverseApi.as_view(), name="transfer-reverse"),
    path("holds", apis.HoldCreateApi.as_view(), name="holds"),
    path("holds/<uuid:hold_id>/capture", apis.HoldCaptureApi.as_view(), name="hold-capture"),
    path("holds/<uuid:hold_id>/void", apis.HoldVoidApi.as_view(), name="hold-void"),
    path("credit/charge", apis.CreditChargeApi.as_view(), name="credit-charge"),
]
