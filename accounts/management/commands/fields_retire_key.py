"""`fields_retire_key VERSION --reason "..."`: ask for a field-encryption KEK version nothing uses to be destroyed.

Four eyes (ADR 0015): the command checks the version could be retired now,
then only records the request; a second security admin (manage_encryption_keys) approves it in the admin,
which destroys the version. It lives with the approvals (accounts), above the
tokenvault app whose key ring it retires. `--dry-run` runs the same check and
says what would be asked, without credentials and without recording anything,
so an operator learns whether a rewrap is still needed before involving a
second person.
"""

from __future__ import annotations

from django.core.management.base import CommandError, CommandParser
from django.urls import reverse

from accounts.approvals.kinds_keys import PERMISSION, field_key_retire_request
from fintech.operators import OPERATOR_CREDENTIALS_HELP, OperatorCommand
from fintech.problems import DomainError
from tokenvault.field_keys import field_kek_retire_check


class Command(OperatorCommand):
    operator_permission = PERMISSION
    help = (
        "Ask for an old field KEK version to be destroyed (refused while any stored value still uses it: run"
        " fields_rewrap). Only records a request: a second security admin approves it in the admin."
        + OPERATOR_CREDENTIALS_HELP
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "version", type=int, help="the field KEK version to retire, a number (required; never the current one)"
        )
        parser.add_argument(
            "--reason", help="why, for the approver and the audit trail (required, except with --dry-run)"
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="only check whether the version could be retired now and say so; record nothing, ask for no"
            " credentials (default: %(default)s)",
        )

    def handle(self, *args, version: int, reason: str | None, dry_run: bool, **options) -> None:
        if not dry_run and not (reason or "").strip():
            raise CommandError("--reason is required (it is shown to the approver and kept in the audit trail)")
        try:
            kek_id = field_kek_retire_check(version=version)  # refused before anyone is asked for credentials
            if dry_run:
                self.stdout.write(
                    f"dry run: field KEK {kek_id} version {version} can be retired now; without --dry-run this"
                    " records a request for a second security admin to approve. Nothing was changed."
                )
                return
            operator = self.operator_authenticate()
            approval = field_key_retire_request(version=version, requested_by=operator.user, reason=reason)
        except DomainError as error:
            suffix = " (dry run: nothing was changed)" if dry_run else ""
            raise CommandError(f"{error.code}: {error.detail}{suffix}") from None
        self.stdout.write(
            f"not retired yet: request {approval.public_id} awaits a second security admin's approval at"
            f" {reverse('admin:accounts_approvalrequest_change', args=[approval.pk])}"
        )
