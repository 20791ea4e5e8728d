"""`staff_bootstrap EMAIL`: invite the first staff member (security_admin) of a fresh installation.

Every later staff member is invited through a four-eyes request in the admin;
the first one cannot be, as nobody could approve. Refused as soon as any
active staff member exists. Recorded as `system:staff_bootstrap` with an alert.
Prints the single-use link (also emailed), valid 24 hours: whoever opens it
sets the password and authenticator, so hand it to the person only.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.invitations.bootstrap import staff_bootstrap_invite
from accounts.invitations.services import INVITATION_TTL
from fintech.problems import DomainError


class Command(BaseCommand):
    help = "Invite the first security admin of a fresh installation (only while no active staff member exists)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("email", help="the first security admin's email address (required)")

    def handle(self, *args, **options) -> None:
        try:
            invitation, link = staff_bootstrap_invite(email=options["email"])
        except DomainError as refused:
            raise CommandError(f"{refused.code}: {refused.detail}") from None
        hours = int(INVITATION_TTL.total_seconds() // 3600)
        self.stdout.write(self.style.SUCCESS(f"Invitation {invitation.public_id} emailed (security_admin)."))
        self.stdout.write(f"Single-use link, valid {hours} hours (whoever opens it becomes that staff member):")
        self.stdout.write(link)
