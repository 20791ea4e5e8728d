"""`ledger_deposit ACCOUNT_PUBLIC_ID AMOUNT --reason "..."`: an operator pays money into a customer account.

The money comes from the platform funding account of the account's currency.
The reason is required and lands in the transfer's reference and the audit
trail, which records the command itself as the actor.
"""

from __future__ import annotations

import uuid

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services.events import Actor
from fintech.db_retry import run_with_retry
from fintech.problems import DomainError
from ledger.currencies import format_amount, parse_amount
from ledger.models import LedgerAccount
from ledger.services.funding import deposit_from_funding


class Command(BaseCommand):
    help = "Deposit AMOUNT (like 100.00, in the account's currency) into an account from platform funding."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("account", help="the account's public id")
        parser.add_argument("amount", help='decimal amount in the account currency, e.g. "100.00"')
        parser.add_argument("--reason", required=True, help="why the money is paid in (required, audited)")

    def handle(self, *args, account: str, amount: str, reason: str, **options) -> None:
        try:
            public_id = uuid.UUID(account)
        except ValueError as error:
            raise CommandError(f"not an account id: {account!r}") from error
        target = LedgerAccount.objects.exclude(kind=LedgerAccount.Kind.PLATFORM).filter(public_id=public_id).first()
        if target is None:
            raise CommandError(f"no customer account {account}")
        try:
            amount_minor = parse_amount(amount, target.currency)
            transfer = run_with_retry(
                lambda: deposit_from_funding(
                    account=target, amount_minor=amount_minor, reason=reason, actor=Actor.system("ledger_deposit")
                )
            )
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.detail}") from error
        self.stdout.write(
            f"deposited {format_amount(amount_minor, target.currency)} {target.currency} "
            f"into {target.public_id}: transfer {transfer.public_id}"
        )
