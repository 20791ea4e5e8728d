"""`card_numbers_find`: rows stored before free text was checked are reported, masked; exit 1 when any."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from audit.models import AuditEvent
from fintech.models import IdempotencyRecord
from ledger.free_text_scan import TABLES, stored_card_numbers
from ledger.management.commands.card_numbers_find import Command
from ledger.models import Hold
from ledger.tests.factories import account, as_ledger_definer, customer

pytestmark = pytest.mark.django_db


def run(*arguments: str) -> tuple[int, str]:
    stdout = io.StringIO()
    try:
        call_command("card_numbers_find", *arguments, stdout=stdout)
    except CommandError as error:
        return error.returncode, stdout.getvalue()
    return 0, stdout.getvalue()


def hold_stored_before_the_rule(reference: str) -> Hold:
    """A raw ORM insert: what an old release wrote, without the reference check."""
    owner = customer()
    source, destination = account(owner=owner), account()
    with as_ledger_definer():
        return Hold.objects.create(
            account=source,
            destination=destination,
            currency="EUR",
            amount_minor=100,
            status=Hold.Status.VOIDED,
            expires_at=timezone.now(),
            reference=reference,
            created_by=owner,
        )


def test_a_clean_database_exits_zero():
    hold_stored_before_the_rule("invoice 9999 9999 9999 9995")

    code, stdout = run()

    assert code == 0
    assert stdout.startswith("no card numbers in the free text of ledger_transfer, ledger_hold")


def test_rows_stored_before_the_rule_are_reported_masked_and_exit_one():
    hold = hold_stored_before_the_rule("card 4111 1111 1111 1111 refund")
    event = AuditEvent.objects.create(  # append-only table: INSERT is allowed, and skips the masking service
        event_type="ledger.transfer.posted",
        outcome="success",
        payload={"note": ["x", {"reference": "5105105105105100"}]},
    )
    record = IdempotencyRecord.objects.create(
        client_id="c",
        principal="p",
        key="k",
        fingerprint="f" * 64,
        response_status=201,
        response_body={"reference": "paid 3782-822463-10005", "amount": "1.00"},
        expires_at=timezone.now() + timedelta(days=1),
    )

    code, stdout = run("--batch-size", "1")

    assert code == 1
    lines = stdout.splitlines()
    assert f"ledger_hold id={hold.pk} reference: visa ****1111" in lines
    assert f"audit_auditevent id={event.pk} payload.note[1].reference: mastercard ****5100" in lines
    assert f"fintech_idempotencyrecord id={record.pk} response_body.reference: amex ****0005" in lines
    assert "ledger_hold: 1 card number(s)" in lines
    for number in ("4111 1111", "4111111111111111", "5105105105105100", "822463"):
        assert number not in stdout


def test_a_table_can_be_scanned_alone_and_listing_can_be_capped():
    hold_stored_before_the_rule("4111111111111111")
    hold_stored_before_the_rule("5105 1051 0510 5100")

    only_audit = run("--table", "audit_auditevent")
    capped = run("--table", "ledger_hold", "--max-listed", "1")

    assert only_audit[0] == 0
    assert capped[0] == 1
    assert len([line for line in capped[1].splitlines() if line.startswith("ledger_hold id=")]) == 1
    assert "ledger_hold: 2 card number(s)" in capped[1]


def test_help_names_each_argument_and_its_default():
    text = Command().create_parser("manage.py", "card_numbers_find").format_help()

    for expected in ("--table", "--batch-size", "(default: 1000)", "--max-listed", "every table"):
        assert expected in " ".join(text.split())


def test_the_scan_refuses_an_unknown_table_or_an_unbounded_batch():
    with pytest.raises(ValueError, match="not a table"):
        list(stored_card_numbers(tables=("accounts_user",)))
    with pytest.raises(ValueError, match="batch size"):
        list(stored_card_numbers(batch_size=0))
    assert set(TABLES) >= {"ledger_transfer", "ledger_hold", "audit_auditevent", "fintech_idempotencyrecord"}
