"""`vault_grant COMMAND`: a signed, single-use grant naming you, for one run of a vault-role key command.

The vault role cannot read this database's staff or approvals (ADR 0012), so
its key commands take a grant the API role signs after authenticating the
operator (fintech/staff_grants.py). `vault_retire_key` is four eyes: the first
run records a request; once a second person approved it in the admin, the
requester runs this again with `--approval ID` to fetch the grant (once).
"""

from __future__ import annotations

import uuid

from django.core.management.base import CommandError, CommandParser
from django.urls import reverse

from accounts.approvals.kinds_keys import (
    PERMISSION,
    VAULT_GRANT_COMMANDS,
    vault_grant_issue,
    vault_key_retire_request,
    vault_retire_grant_fetch,
)
from fintech.operators import OPERATOR_CREDENTIALS_HELP, OperatorCommand
from fintech.problems import DomainError


class Command(OperatorCommand):
    operator_permission = PERMISSION
    help = (
        "Print a signed grant (valid 10 minutes, once) for a vault-role key command; paste it when that command"
        " asks. vault_retire_key: without --approval, records a four-eyes request; with --approval ID (after a"
        " second person approved), prints its grant (valid 1 hour, fetched once)." + OPERATOR_CREDENTIALS_HELP
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "vault_command", choices=VAULT_GRANT_COMMANDS, help="the command the grant is for (required)"
        )
        parser.add_argument(
            "--kek-version",
            type=int,
            default=None,
            help="vault_retire_key: the KEK version to retire (default: none; required for vault_retire_key)",
        )
        parser.add_argument(
            "--reason",
            default="",
            help="vault_retire_key: why, for the approver (default: empty, required for vault_retire_key)",
        )
        parser.add_argument(
            "--approval",
            default=None,
            help="vault_retire_key: the approved request's id (default: none: record a new request)",
        )

    def handle(self, *args, vault_command: str, kek_version: int | None, reason: str, approval: str | None, **options):
        version = kek_version
        retire = vault_command == "vault_retire_key"
        if approval is not None:
            try:
                approval = str(uuid.UUID(approval))
            except ValueError:
                raise CommandError(f"not a request id: {approval!r}") from None
        if retire != (version is not None):
            raise CommandError("--kek-version is for vault_retire_key, and vault_retire_key needs it")
        if retire and approval is None and not reason.strip():
            raise CommandError("--reason is required to ask for a retirement")
        operator = self.operator_authenticate()
        try:
            if not retire:
                token, expires_at = vault_grant_issue(command=vault_command, args={}, operator=operator.user)
            elif approval is None:
                request = vault_key_retire_request(version=version, requested_by=operator.user, reason=reason)
                self.stdout.write(
                    f"requested: {request.public_id} awaits a second key manager at"
                    f" {reverse('admin:accounts_approvalrequest_change', args=[request.pk])}; then run"
                    f" vault_grant vault_retire_key --kek-version {version} --approval {request.public_id}"
                )
                return
            else:
                token, expires_at = vault_retire_grant_fetch(
                    approval_id=approval, version=version, operator=operator.user
                )
        except (DomainError, ValueError) as error:
            detail = f"{error.code}: {error.detail}" if isinstance(error, DomainError) else str(error)
            raise CommandError(detail) from None
        self.stderr.write(f"grant for {vault_command} (once, until {expires_at.isoformat()}):")
        self.stdout.write(token)
