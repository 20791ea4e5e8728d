"""A stored answer cannot be deleted or rewritten with the web role's database login (issue 12, item 5).

Deleting a record would let a retry run its call again (money moved twice);
rewriting one is also refused at replay by its MAC (test_idempotency.py).
Expired records go through the owner's function, by the database's clock.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from conftest import database_url
from fintech.idempotency import idempotency_records_purge
from fintech.models import IdempotencyRecord

pytestmark = pytest.mark.django_db(transaction=True)


def _record(key: str, *, expires_in: timedelta) -> IdempotencyRecord:
    return IdempotencyRecord.objects.create(
        client_id="mobile-app",
        principal="p",
        key=key,
        fingerprint="f",
        response_status=201,
        response_body={"ok": True},
        response_mac="m",
        expires_at=timezone.now() + expires_in,
    )


def test_the_runtime_role_can_neither_delete_nor_rewrite_a_record_and_the_purge_takes_only_expired_ones():
    if settings.DATABASE_RUNTIME_ROLES["default"] == connection.settings_dict["USER"]:
        pytest.skip("single-role database: no separate runtime role to test")
    live = _record("live", expires_in=timedelta(hours=1))
    expired = _record("expired", expires_in=-timedelta(seconds=1))

    with psycopg.connect(database_url("default")) as runtime:
        for statement in (
            "DELETE FROM fintech_idempotencyrecord WHERE id = %s",
            "UPDATE fintech_idempotencyrecord SET response_status = 200 WHERE id = %s",
            "UPDATE fintech_idempotencyrecord SET expires_at = now() - interval '1 day' WHERE id = %s",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), runtime.cursor() as cursor:
                cursor.execute(statement, [live.pk])
            runtime.rollback()
        with runtime.cursor() as cursor:  # the purge it may run: expired records only, the database's clock
            cursor.execute("SELECT fintech_idempotency_purge(1000)")
            assert cursor.fetchone()[0] == 1
        runtime.commit()

    assert list(IdempotencyRecord.objects.values_list("pk", flat=True)) == [live.pk]
    assert not IdempotencyRecord.objects.filter(pk=expired.pk).exists()
    assert idempotency_records_purge() == 0
