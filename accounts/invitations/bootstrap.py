"""The first staff member of a fresh installation (`staff_bootstrap`), invited with no approver."""

from __future__ import annotations

from django.db import connection, transaction

from accounts.approvals.models import StaffInvitation
from accounts.invitations.exceptions import InvitationStaffExists
from accounts.invitations.selectors import active_staff_exists
from accounts.invitations.services import OBJECT_TYPE, staff_invitation_issue
from accounts.roles import SECURITY_ADMIN
from audit.alerts import alert_raise
from audit.services.events import Actor
from fintech.public_origin import public_origin


def staff_bootstrap_invite(*, email: str) -> tuple[StaffInvitation, str]:
    """Invite the first security admin of a fresh installation; returns the invitation and its absolute link.

    Four eyes needs two staff members, so the first one cannot be approved by
    anyone: this is allowed only while no active staff member exists (checked
    again when the link is accepted), is recorded as `system:staff_bootstrap`
    and raises an alert, so the first staff members see how they were created.
    """
    actor = Actor.system("staff_bootstrap")
    with transaction.atomic(durable=True):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended('accounts.staff_bootstrap', 0))")
        if active_staff_exists():
            raise InvitationStaffExists()
        invitation, path = staff_invitation_issue(email=email, roles=[SECURITY_ADMIN], approval=None, actor=actor)
        alert_raise(
            kind="staff.bootstrap_invitation",
            summary=f"staff invitation {invitation.public_id} ({SECURITY_ADMIN}) issued from the command line "
            "with no approver: no active staff member existed",
            object_type=OBJECT_TYPE,
            object_id=str(invitation.public_id),
            role=SECURITY_ADMIN,
            actor=actor,
        )
    return invitation, public_origin() + path
