"""Test data for the ledger: customers, accounts, money. Money always enters through the services."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import factory
from django.conf import settings
from django.db import connection, transaction

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


@contextmanager
def as_ledger_definer() -> Iterator[None]:
    """Write the money tables directly, as the ledger functions' owner: what only a database superuser (or the
    owner's DBA login, after making itself a member) could do. Tamper tests only; never the web role's power."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL ROLE {connection.ops.quote_name(settings.LEDGER_DEFINER_ROLE)}")
        yield
        cursor.execute("RESET ROLE")


def hold_backdate(hold, *, expires_at) -> None:
    """Move a hold's expiry into the past: expiry follows the database clock, so a test cannot wait a day."""
    from ledger.models import Hold

    with as_ledger_definer():
        Hold.objects.filter(pk=hold.pk).update(expires_at=expires_at)


def transfer_written_directly(source, destination, amount_minor: int, *, cursor=None) -> int:
    """A balanced, consistent transfer written straight into the tables, with no audit event: the rows the
    functions would write, without the functions. Returns the transfer's id. With `cursor` (another login's),
    written there; otherwise as the definer role."""
    if cursor is None:
        with as_ledger_definer(), connection.cursor() as own:
            return transfer_written_directly(source, destination, amount_minor, cursor=own)
    cursor.execute(
        "INSERT INTO ledger_transfer (public_id, kind, currency, amount_minor, reference, client_id, reversed_minor,"
        " flagged_for_review, review_reasons) VALUES (gen_random_uuid(), 'transfer', %s, %s, '', '', 0, false, '[]')"
        " RETURNING id",
        [source.currency, amount_minor],
    )
    transfer_id = cursor.fetchone()[0]
    for account_id, delta in sorted([(source.pk, -amount_minor), (destination.pk, amount_minor)]):
        cursor.execute(
            "UPDATE ledger_ledgeraccount SET posted_minor = posted_minor + %s, version = version + 1 WHERE id = %s"
            " RETURNING posted_minor, version",
            [delta, account_id],
        )
        posted, version = cursor.fetchone()
        cursor.execute(
            "INSERT INTO ledger_posting (transfer_id, account_id, amount_minor, currency, balance_after_minor,"
            " account_version) VALUES (%s, %s, %s, %s, %s, %s)",
            [transfer_id, account_id, delta, source.currency, posted, version],
        )
    return transfer_id


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
