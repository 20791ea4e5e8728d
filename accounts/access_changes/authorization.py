"""Applying an approved access change: the setting the database's triggers read, and the signed row the
alert job checks (`AccessChangeAuthorization`, issue 12). One way for every path that applies one: the
four-eyes service and a staff invitation's acceptance."""

from __future__ import annotations

from typing import Any

from django.db import connection

from accounts.access_changes.models import AccessChangeAuthorization
from fintech.macs import row_mac_matches, row_mac_of

APPROVAL_SETTING = "fintech.approval_request"
SALT = "accounts.access_change.authorization/1"


def _values(xact_id: int, approval_public_id: Any, subject_id: int | None) -> list[Any]:
    return [int(xact_id), str(approval_public_id), subject_id]


def approved_access_begin(approval_public_id: Any, subject_id: int | None) -> None:
    """From here to `approved_access_end`, this transaction applies the request to `subject_id` (a user's id)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id()::text::bigint, set_config(%s, %s, true)",
                       [APPROVAL_SETTING, str(approval_public_id)])  # fmt: skip
        xact_id = cursor.fetchone()[0]
    AccessChangeAuthorization.objects.create(
        xact_id=xact_id,
        approval_public_id=approval_public_id,
        subject_id=subject_id,
        mac=row_mac_of(SALT, _values(xact_id, approval_public_id, subject_id)),
    )


def approved_access_end() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, '', true)", [APPROVAL_SETTING])


def approved_in_transaction(*, xact_id: int, approval_public_id: str, subject_public_id: str | None) -> bool:
    """Whether the application applied `approval_public_id` to this subject in transaction `xact_id`."""
    from accounts.models import User

    subject_id = None
    if subject_public_id is not None:
        subject_id = User.objects.filter(public_id=subject_public_id).values_list("id", flat=True).first()
    for row in AccessChangeAuthorization.objects.filter(xact_id=xact_id, approval_public_id=approval_public_id):
        if row_mac_matches(row.mac, SALT, _values(row.xact_id, row.approval_public_id, row.subject_id)) and (
            subject_public_id is None or row.subject_id == subject_id
        ):
            return True
    return False
