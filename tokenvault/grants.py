"""The vault role's side of staff grants: read one from the terminal, check it, use it once, name its person.

A grant (fintech/staff_grants.py) is read from stdin like an operator's
password, never from arguments, and recorded in the vault database as used.
A command that wants a refusal to leave the grant unspent (vault_retire_key)
uses it inside the vault transaction of its own work.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, TextIO

from django.core.management.base import CommandError
from django.db import IntegrityError, transaction

from audit.services.events import Actor
from fintech.operators import operator_line_read
from fintech.problems import DomainError
from fintech.staff_grants import StaffGrantRefused, staff_grant_open
from tokenvault.models import UsedStaffGrant

GRANT_HELP = (
    " Reads a staff grant from the terminal first: run `manage.py vault_grant COMMAND` in the API role (it"
    " authenticates you; a retirement also needs a second person's approval) and paste the grant it prints."
)


@dataclass(frozen=True, slots=True)
class StaffGrant:
    operator: str
    approved_by: str
    approval: str
    actor: Actor


def staff_grant_use(*, token: str, command: str, args: dict[str, Any]) -> StaffGrant:
    """Check the grant and spend it; refused (`staff_grant_refused`) if invalid, for another run, or used."""
    payload = staff_grant_open(token, command=command, args=args)
    try:
        with transaction.atomic(using="vault"):
            UsedStaffGrant.objects.using("vault").create(
                grant_id=payload["grant_id"],
                command=command,
                operator=payload["operator"],
                approved_by=payload.get("approved_by") or "",
            )
    except IntegrityError as error:
        raise StaffGrantRefused("This grant was used already; ask for a new one.") from error
    return StaffGrant(
        operator=payload["operator"],
        approved_by=payload.get("approved_by") or "",
        approval=payload.get("approval") or "",
        actor=Actor(staff=payload["operator"]),
    )


class StaffGrantCommandMixin:
    """For a vault-role command: a hidden `stdin` option and `self.staff_grant_use(args)` before it acts."""

    stealth_options = ("stdin",)
    stdin: TextIO

    def execute(self, *args, **options):
        self.stdin = options.get("stdin", sys.stdin)
        return super().execute(*args, **options)  # type: ignore[misc]

    def staff_grant_use(self, args: dict[str, Any]) -> StaffGrant:
        command = type(self).__module__.rsplit(".", 1)[-1]
        token = operator_line_read(stdin=self.stdin, stdout=self.stderr, prompt="Staff grant: ")  # type: ignore[attr-defined]
        try:
            return staff_grant_use(token=token, command=command, args=args)
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.detail} Nothing was changed.") from None
