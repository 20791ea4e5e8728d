"""Customer-facing ledger API under /v1: thin views over ledger services and selectors.

Every view: the principal from the token only; another customer's object is a
404; amounts in JSON are strings with the currency's exponent; every
state-changing call goes through `fintech.idempotency.idempotent_response`
(Idempotency-Key required, effect and record in one transaction).
"""

from ledger.apis.accounts import AccountDetailApi, AccountEntriesApi, AccountListCreateApi, AccountStatementCsvApi
from ledger.apis.movements import (
    CreditChargeApi,
    HoldCaptureApi,
    HoldCreateApi,
    HoldVoidApi,
    TransferCreateApi,
    TransferDetailApi,
    TransferReverseApi,
)

__all__ = [
    "AccountDetailApi",
    "AccountEntriesApi",
    "AccountListCreateApi",
    "AccountStatementCsvApi",
    "CreditChargeApi",
    "HoldCaptureApi",
    "HoldCreateApi",
    "HoldVoidApi",
    "TransferCreateApi",
    "TransferDetailApi",
    "TransferReverseApi",
]
