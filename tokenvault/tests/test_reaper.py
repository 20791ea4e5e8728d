"""The orphan reaper against a real vault process: orphans go, referenced and recently issued tokens stay.

The vault process commits its rows, so these tests are transactional (root
conftest `vault_live`); records are aged by UPDATE in the vault database,
committed, so the vault process reads the old times. No test waits for a clock.
"""

from __future__ import annotations

import io
import uuid
from datetime import date, timedelta

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.cards.services import payment_card_delete, payment_card_save
from accounts.models import CustomerProfile, PaymentCard
from accounts.services import (
    customer_create,
    customer_identity_capture,
    identity_national_id_tokenize,
    identity_validate,
)
from accounts.tests.operator_helpers import operator_create, operator_stdin
from audit.models import AuditEvent
from audit.services.events import Actor
from fintech.celery import app as celery_app
from tokenvault.client import vault_client
from tokenvault.exceptions import ReapCutoffTooRecent
from tokenvault.models import VaultRecord
from tokenvault.services.reaper import vault_orphans_reap, vault_token_fields

LIVE = pytest.mark.django_db(transaction=True, databases=["default", "vault"])
ACTOR = Actor(staff="staff_reaper_test")
AMEX = "378282246310005"
MASTERCARD = "5555555555554444"
VISA = "4111111111111111"
NATIONAL_ID = "QQ 12 34 56 C"


@pytest.fixture(autouse=True)
def field_keys(tmp_path, settings):
    settings.FIELD_KEK_DIR = str(tmp_path / "field-kek")
    settings.FIELD_KEK_GENERATE = True


def age(token: str, *, hours: float, created_hours: float | None = None) -> None:
    """Pretend the record was last issued `hours` ago (and created `created_hours` ago), committed."""
    now = timezone.now()
    changes = {"last_issued_at": now - timedelta(hours=hours)}
    if created_hours is not None:
        changes["created_at"] = now - timedelta(hours=created_hours)
    assert VaultRecord.objects.using("vault").filter(token=token).update(**changes) == 1


def record(token: str) -> VaultRecord:
    return VaultRecord.objects.using("vault").get(token=token)


def orphan_card(number: str = AMEX) -> str:
    """A vaulted card number no card row holds: what a crash between tokenize and write leaves."""
    return vault_client().tokenize(token_type="card", value=number, actor=ACTOR).token


def reaped(token: str) -> list[tuple[str, str]]:
    return list(
        AuditEvent.objects.filter(event_type="vault.shredded", object_id=token).values_list("actor_client", "outcome")
    )


def customer():
    return customer_create(email=f"reaper.{uuid.uuid4().hex[:8]}@example.com", password=None)


def identity_capture(user) -> str:
    identity = identity_validate(
        full_name="Ada King Lovelace",
        date_of_birth=date(1985, 12, 10),
        phone=f"+44 20 7946 0{uuid.uuid4().int % 1000:03d}",
        postal_address={"line1": "12 St James's Square", "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"},
        national_id=NATIONAL_ID,
    )
    token = identity_national_id_tokenize(identity=identity, actor=ACTOR)
    customer_identity_capture(user=user, identity=identity, national_id_token=token, actor=ACTOR)
    return token


@LIVE
def test_an_old_orphan_is_shredded_and_audited_as_the_reaper_and_referenced_tokens_stay(vault_live):
    owner = customer()
    kept = payment_card_save(owner=owner, number=VISA, exp_month=12, exp_year=2031, holder="Ada", actor=ACTOR)
    deleted = payment_card_save(owner=owner, number=MASTERCARD, exp_month=1, exp_year=2032, holder="Ada", actor=ACTOR)
    payment_card_delete(owner=owner, public_id=deleted.public_id, actor=ACTOR)  # a tombstone, already shredded
    national_id_token = identity_capture(owner)
    orphan = orphan_card()
    for token in (kept.token, deleted.token, national_id_token, orphan):
        age(token, hours=48, created_hours=48)

    summary = vault_orphans_reap(grace_hours=24)

    assert (summary.examined, summary.referenced, summary.orphans, summary.shredded, summary.skipped) == (
        3, 2, 1, 1, 0,
    )  # fmt: skip
    shredded = record(orphan)
    assert (bytes(shredded.ciphertext), shredded.last4, shredded.blind_index) == (b"", "", None)
    assert shredded.shredded_at is not None
    assert reaped(orphan) == [("system:vault_reaper", "success")]
    event = AuditEvent.objects.get(event_type="vault.shredded", object_id=orphan)
    assert set(event.payload) == {"token_type", "not_issued_since"}
    assert AMEX not in str(event.payload)
    for token in (kept.token, national_id_token):
        assert record(token).shredded_at is None
        assert reaped(token) == []
    assert PaymentCard.objects.get(pk=kept.pk).status == PaymentCard.Status.ACTIVE
    assert [actor for actor, _ in reaped(deleted.token)] == [ACTOR.client]  # the delete's shred, nothing more


@LIVE
def test_an_orphan_inside_the_grace_is_not_shredded_yet(vault_live):
    orphan = orphan_card()
    age(orphan, hours=23)

    summary = vault_orphans_reap(grace_hours=24)

    assert (summary.examined, summary.shredded) == (0, 0)
    assert record(orphan).shredded_at is None
    assert reaped(orphan) == []


@LIVE
def test_a_convergent_token_created_long_ago_but_reissued_today_is_not_reaped(vault_live):
    client = vault_client()
    first = client.tokenize(token_type="national_id", value=NATIONAL_ID, actor=ACTOR, convergent=True)
    age(first.token, hours=24 * 30, created_hours=24 * 30)

    again = client.tokenize(token_type="national_id", value=NATIONAL_ID, actor=ACTOR, convergent=True)
    summary = vault_orphans_reap(grace_hours=24)

    assert (again.token, again.created) == (first.token, False)
    reissued = record(first.token)
    assert reissued.last_issued_at > timezone.now() - timedelta(hours=1)
    assert reissued.created_at < timezone.now() - timedelta(days=29)
    assert reissued.shredded_at is None
    assert (summary.examined, summary.shredded) == (0, 0)


@LIVE
def test_a_token_reissued_between_the_listing_and_the_shred_is_skipped(vault_live):
    client = vault_client()
    token = client.tokenize(token_type="national_id", value=NATIONAL_ID, actor=ACTOR, convergent=True).token
    age(token, hours=48, created_hours=48)
    cutoff = timezone.now() - timedelta(hours=24)
    listed = client.reap_candidates(not_issued_since=cutoff, after_id=0, limit=10)
    assert [item.token for item in listed] == [token]

    client.tokenize(token_type="national_id", value=NATIONAL_ID, actor=ACTOR, convergent=True)  # a new customer
    shredded, skipped = client.reap(tokens=[token], not_issued_since=cutoff, actor=Actor.system("vault_reaper"))

    assert (shredded, skipped) == ([], [token])
    assert record(token).shredded_at is None
    assert reaped(token) == []


@LIVE
def test_a_convergent_tokenize_after_the_reap_gets_a_fresh_token_not_the_shredded_one(vault_live):
    client = vault_client()
    token = client.tokenize(token_type="national_id", value=NATIONAL_ID, actor=ACTOR, convergent=True).token
    age(token, hours=48)
    vault_orphans_reap(grace_hours=24)

    again = client.tokenize(token_type="national_id", value=NATIONAL_ID, actor=ACTOR, convergent=True)

    assert again.created is True
    assert again.token != token
    assert record(again.token).shredded_at is None


@LIVE
def test_candidates_come_in_keyset_pages_and_a_dry_run_shreds_nothing(vault_live):
    orphans = [orphan_card(number) for number in (AMEX, MASTERCARD, VISA)]
    for token in orphans:
        age(token, hours=48)
    client = vault_client()
    cutoff = timezone.now() - timedelta(hours=24)

    first = client.reap_candidates(not_issued_since=cutoff, after_id=0, limit=2)
    second = client.reap_candidates(not_issued_since=cutoff, after_id=first[-1].id, limit=2)
    summary = vault_orphans_reap(grace_hours=24, dry_run=True)

    assert [item.token for item in first + second] == orphans
    assert {item.token_type for item in first + second} == {"card"}
    assert (summary.examined, summary.orphans, summary.shredded, summary.dry_run) == (3, 3, 0, True)
    assert [record(token).shredded_at for token in orphans] == [None, None, None]


@LIVE
def test_the_vault_refuses_a_cutoff_younger_than_an_hour_and_shreds_nothing(vault_live):
    orphan = orphan_card()
    age(orphan, hours=48)
    client = vault_client()
    too_recent = timezone.now() - timedelta(minutes=30)

    with pytest.raises(ReapCutoffTooRecent):
        client.reap(tokens=[orphan], not_issued_since=too_recent, actor=Actor.system("vault_reaper"))
    with pytest.raises(ReapCutoffTooRecent):
        client.reap_candidates(not_issued_since=too_recent, after_id=0, limit=10)

    assert record(orphan).shredded_at is None
    with pytest.raises(ValueError, match="at least 1 hour"):
        vault_orphans_reap(grace_hours=0)


@LIVE
def test_the_command_prints_a_summary_and_dry_run_changes_nothing(vault_live):
    orphan = orphan_card()
    age(orphan, hours=10)
    stdout = io.StringIO()

    call_command("vault_reap_orphans", "--dry-run", "--grace-hours", "6", stdout=stdout)
    assert record(orphan).shredded_at is None
    assert "orphans: 1; would shred: 1;" in stdout.getvalue()

    with pytest.raises(CommandError, match="operator authentication failed"):  # a person runs the shredding
        call_command("vault_reap_orphans", "--grace-hours", "6", stdout=io.StringIO(), stdin=io.StringIO())
    assert record(orphan).shredded_at is None
    keeper = operator_create(email="reaper@example.com", roles=["security_admin"])
    call_command("vault_reap_orphans", "--grace-hours", "6", stdout=(stdout := io.StringIO()),
                 stderr=io.StringIO(), stdin=operator_stdin(keeper))  # fmt: skip
    assert record(orphan).shredded_at is not None
    assert "orphans: 1; shredded: 1; skipped (re-issued or already shredded): 0" in stdout.getvalue()
    assert orphan not in stdout.getvalue()


def test_the_command_refuses_a_grace_under_an_hour():
    with pytest.raises(CommandError, match="at least 1"):
        call_command("vault_reap_orphans", "--grace-hours", "0")


def test_vault_token_fields_are_collected_from_the_app_configs():
    assert {(model, field) for model, field in vault_token_fields()} == {
        (PaymentCard, "token"),
        (CustomerProfile, "national_id_token"),
    }


def test_the_reaper_runs_daily_from_beat_with_the_configured_grace():
    entry = settings.CELERY_BEAT_SCHEDULE["vault-reap-orphans"]
    assert (entry["task"], entry["schedule"]) == ("tokenvault.reap_orphans", 86400.0)
    celery_app.loader.import_default_modules()
    assert "tokenvault.reap_orphans" in celery_app.tasks
    assert settings.VAULT_ORPHAN_GRACE_HOURS == 24
