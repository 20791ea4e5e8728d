"""Test data for the ledger: customers, accounts, money. Money always enters through the services."""

from __future__ import annotations

import factory

from accounts.models import CustomerProfile, User
from audit.services.events import Actor
from ledger.models import LedgerAccount, Transfer, TransferLimit, TransferRule
from ledger.services import account_open, deposit_from_funding, transfer_create

TEST_ACTOR = Actor.system("ledger-tests")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    password = factory.django.Password(None)


class CustomerProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomerProfile

    user = factory.SubFactory(UserFactory)
    tier = CustomerProfile.Tier.STANDARD
    status = CustomerProfile.Status.ACTIVE


def customer(*, tier: str = "standard", status: str = "active") -> User:
    return CustomerProfileFactory(tier=tier, status=status).user


def account(
    *,
    owner: User | None = None,
    currency: str = "EUR",
    balance_minor: int = 0,
    kind: str = LedgerAccount.Kind.DEPOSIT,
    credit_limit_minor: int = 0,
) -> LedgerAccount:
    """An open account, funded from the platform (a real deposit, so the ledger stays balanced)."""
    opened = account_open(
        owner=owner or customer(),
        currency=currency,
        kind=kind,
        credit_limit_minor=credit_limit_minor,
        actor=TEST_ACTOR,
    )
    if balance_minor:
        deposit_from_funding(account=opened, amount_minor=balance_minor, reason="test funding", actor=TEST_ACTOR)
        opened.refresh_from_db()
    return opened


def generous_limits(currencies=("EUR", "USD", "GBP", "JPY", "KWD")) -> None:
    """Limits high enough that a test about something else never meets them (and review thresholds to match)."""
    for tier in ("standard", "premium", "business"):
        for currency in currencies:
            TransferLimit.objects.update_or_create(
                tier=tier,
                currency=currency,
                defaults={"per_transfer_max_minor": 10**13, "daily_outgoing_max_minor": 10**14},
            )
    for currency in currencies:
        review_threshold(currency, 10**13)


def review_threshold(currency: str, threshold_minor: int, action: str = "flag") -> TransferRule:
    """An active review threshold for the currency: the policy step refuses a currency without one."""
    rule, _ = TransferRule.objects.update_or_create(
        name=f"test review threshold {currency}",
        defaults={
            "kind": "review_threshold",
            "currency": currency,
            "threshold_minor": threshold_minor,
            "action": action,
            "active": True,
        },
    )
    return rule


def no_rules() -> None:
    """No rule that could flag, hold or refuse: velocity off, every review threshold out of reach."""
    TransferRule.objects.filter(kind="velocity").update(active=False)
    TransferRule.objects.filter(kind="review_threshold").update(threshold_minor=10**15, action="flag")
    currencies = {"EUR", "USD", "GBP", *TransferLimit.objects.values_list("currency", flat=True)}
    for currency in sorted(currencies):
        review_threshold(currency, 10**15)


def send(source: LedgerAccount, destination: LedgerAccount, amount_minor: int, **overrides) -> Transfer:
    """A customer transfer from the source's owner; any argument can be overridden."""
    arguments = {
        "from_public_id": source.public_id,
        "to_public_id": destination.public_id,
        "amount_minor": amount_minor,
        "currency": source.currency,
        "reference": "rent",
        "initiated_by": source.owner,
        "client_id": "mobile-app",
        "actor": TEST_ACTOR,
    }
    arguments.update(overrides)
    return transfer_create(**arguments)
