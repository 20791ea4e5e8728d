"""`ledger_deposit ACCOUNT_PUBLIC_ID AMOUNT --reason "..."`: an operator pays money into a customer account.

The money comes from the platform funding account of the account's currency.
The operator authenticates first (email, password, authenticator code from
the terminal) and is recorded as the actor. Up to the four-eyes amounts
(FOUR_EYES_DEPOSIT_THRESHOLDS per deposit, FOUR_EYES_DEPOSIT_DAILY_TOTALS per
operator and day) the deposit posts at once; above them the command only
records a request, which a second operator approves in the admin (ADR 0015).
"""

from __future__ import annotations

import uuid

from django.core.management.base import CommandError, CommandParser
from django.urls import reverse

from accounts.approvals.models import ApprovalRequest
from fintech.db_retry import run_with_retry
from fintech.operators import OPERATOR_CREDENTIALS_HELP, OperatorCommand
from fintech.problems import DomainError
from ledger.currencies import format_amount, parse_amount
from ledger.models import LedgerAccount
from ledger.services.core import reason_check
from ledger.services.four_eyes import deposit_by_operator


class Command(OperatorCommand):
    operator_permission = "accounts.deposit_from_funding"
    help = (
        "Deposit AMOUNT (like 100.00, in the account's currency) into an account from platform funding. Above the"
        " four-eyes amounts it records a request a second operator approves in the admin instead."
        + OPERATOR_CREDENTIALS_HELP
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("account", help="the account's public id (required)")
        parser.add_argument("amount", help='decimal amount in the account currency, e.g. "100.00" (required)')
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
            reason = reason_check(reason)  # bad input is refused before anyone is asked for credentials
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.detail}") from error
        operator = self.operator_authenticate()
        try:
            outcome = run_with_retry(
                lambda: deposit_by_operator(
                    account=target, amount_minor=amount_minor, reason=reason, operator=operator.user
                )
            )
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.detail}") from error
        shown = f"{format_amount(amount_minor, target.currency)} {target.currency}"
        if isinstance(outcome, ApprovalRequest):
            self.stdout.write(
                f"not deposited yet: {shown} is above what one operator may deposit alone. Request"
                f" {outcome.public_id} awaits a second operator's approval in the admin at"
                f" {reverse('admin:accounts_approvalrequest_change', args=[outcome.pk])} (expires"
                f" {outcome.expires_at.isoformat()})."
            )
            return
        self.stdout.write(f"deposited {shown} into {target.public_id}: transfer {outcome.public_id}")
