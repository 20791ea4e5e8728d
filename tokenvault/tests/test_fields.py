"""Encrypted model fields (tokenvault/fields.py) on the real CustomerProfile, against real PostgreSQL."""

from __future__ import annotations

import datetime
import io
import pickle

import pytest
from auditlog.models import LogEntry
from django.core.exceptions import FieldError
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from accounts.approvals.models import ApprovalRequest
from accounts.approvals.services import approval_request_approve
from accounts.models import CustomerProfile
from accounts.selectors import customer_pii_read
from accounts.services import customer_create
from accounts.tests.operator_helpers import operator_create, operator_stdin
from audit.models import AuditEvent
from audit.services.events import Actor
from fintech.problems import DomainError
from tokenvault.exceptions import CiphertextTampered, KekInUse, KekRetireTooSoon, KeyUnavailable
from tokenvault.field_keys import field_kek_retire, fields_rewrap, fields_using_version
from tokenvault.fields import FIELD_KEK_ID, MASK, Sealed, field_blind_index, field_kek_version, field_key_provider
from tokenvault.keys import LocalFileKeyProvider
from tokenvault.tests.conftest import past_retire_grace

pytestmark = pytest.mark.django_db
ACTOR = Actor(staff="staff_fields_test")
NAME = "Zoë Quintessa-Marlowe"
PHONE = "+447700900123"
ADDRESS = {"line1": "221B Baker Street", "city": "London", "postal_code": "NW1 6XE", "country": "GB"}
DOB = datetime.date(1984, 2, 29)


@pytest.fixture(autouse=True)
def field_keys(tmp_path, settings):
    """A fresh field key ring per test, and a vault ring elsewhere (they must never mix)."""
    settings.FIELD_KEK_DIR = str(tmp_path / "field-kek")
    settings.FIELD_KEK_GENERATE = True
    settings.VAULT_KEK_DIR = str(tmp_path / "vault-kek")
    settings.VAULT_KEK_GENERATE = True
    return tmp_path / "field-kek"


def profile_with_identity(email: str = "zoe@example.com", *, name: str = NAME, phone: str = PHONE):
    user = customer_create(email=email, password=None)
    profile = CustomerProfile.objects.select_related("user").get(user=user)
    profile.full_name = name
    profile.date_of_birth = DOB
    profile.phone = phone
    profile.phone_index = field_blind_index(kind="phone", normalized_value=phone)
    profile.postal_address = ADDRESS
    profile.credit_score = 742
    profile.national_id_token = "tok_nid_" + "a" * 26 if email == "zoe@example.com" else "tok_nid_" + "b" * 26
    profile.identity_captured_at = timezone.now()
    profile.save()
    return CustomerProfile.objects.select_related("user").get(pk=profile.pk)


def read_all(profile, purpose="kyc_review"):
    fields = ["full_name", "date_of_birth", "phone", "postal_address", "credit_score"]
    return customer_pii_read(profile=profile, fields=fields, purpose=purpose, actor=ACTOR, reason="test")


def raw_column(profile, column: str) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM accounts_customerprofile WHERE id = %s", [profile.pk])
        return bytes(cursor.fetchone()[0])


def test_every_type_round_trips_through_the_database_and_the_read_is_audited():
    profile = profile_with_identity()

    values = read_all(profile)

    assert values == {
        "full_name": NAME,
        "date_of_birth": DOB,
        "phone": PHONE,
        "postal_address": ADDRESS,
        "credit_score": 742,
    }
    event = AuditEvent.objects.get(event_type="pii.read")
    assert (event.object_type, event.object_id, event.purpose, event.actor_staff) == (
        "customer_profile",
        str(profile.user.public_id),
        "kyc_review",
        "staff_fields_test",
    )
    assert event.payload == {
        "fields": ["credit_score", "date_of_birth", "full_name", "phone", "postal_address"],
        "reason": "test",
    }


def test_the_columns_hold_envelopes_under_the_field_key_ring_and_no_clear_text():
    profile = profile_with_identity()

    for column, clear in [
        ("full_name", NAME.encode()),
        ("phone", PHONE.encode()),
        ("date_of_birth", b"1984-02-29"),
        ("postal_address", b"Baker"),
        ("credit_score", b"742"),
    ]:
        stored = raw_column(profile, column)
        assert stored[:2] == b"TV"
        assert clear not in stored
        assert field_kek_version(Sealed(blob=stored)) == (FIELD_KEK_ID, 1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(p)::text FROM accounts_customerprofile p WHERE id = %s", [profile.pk])
        row_text = cursor.fetchone()[0]
    for clear in [NAME, "Marlowe", "7700900123", "Baker Street", "1984-02-29"]:
        assert clear not in row_text
        assert clear.encode().hex() not in row_text  # bytea columns appear as hex


def test_a_blob_copied_to_another_customers_row_fails_loudly_and_is_recorded():
    victim = profile_with_identity()
    attacker = profile_with_identity("mallory@example.com", name="Mallory", phone="+447700900999")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE accounts_customerprofile SET full_name = (SELECT full_name FROM accounts_customerprofile"
            " WHERE id = %s) WHERE id = %s",
            [victim.pk, attacker.pk],
        )
    attacker = CustomerProfile.objects.select_related("user").get(pk=attacker.pk)

    with pytest.raises(CiphertextTampered) as raised:
        customer_pii_read(profile=attacker, fields=["full_name"], purpose="customer_request", actor=ACTOR)

    assert raised.value.code == "vault_ciphertext_tampered"
    assert not AuditEvent.objects.filter(event_type="pii.read").exists()
    failure = AuditEvent.objects.get(event_type="pii.integrity_failure")
    assert (failure.object_id, failure.payload) == (str(attacker.user.public_id), {"fields": ["full_name"]})


def test_a_blob_copied_to_another_column_of_the_same_row_fails():
    profile = profile_with_identity()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_customerprofile SET phone = full_name WHERE id = %s", [profile.pk])
    profile = CustomerProfile.objects.select_related("user").get(pk=profile.pk)

    assert customer_pii_read(profile=profile, fields=["full_name"], purpose="kyc_review", actor=ACTOR) == {
        "full_name": NAME
    }
    with pytest.raises(CiphertextTampered):
        customer_pii_read(profile=profile, fields=["phone"], purpose="kyc_review", actor=ACTOR)


def test_a_profile_re_pointed_at_another_user_cannot_read_its_blobs():
    profile = profile_with_identity()
    other = customer_create(email="other@example.com", password=None)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM accounts_customerprofile WHERE user_id = %s", [other.pk])
        cursor.execute("UPDATE accounts_customerprofile SET user_id = %s WHERE id = %s", [other.pk, profile.pk])
    profile = CustomerProfile.objects.select_related("user").get(pk=profile.pk)

    with pytest.raises(CiphertextTampered):
        customer_pii_read(profile=profile, fields=["date_of_birth"], purpose="kyc_review", actor=ACTOR)


def test_the_attribute_never_prints_or_pickles_a_clear_value():
    profile = CustomerProfile.objects.select_related("user").get(
        user=customer_create(email="p@example.com", password=None)
    )
    profile.full_name = NAME

    assert isinstance(profile.full_name, Sealed)
    assert str(profile.full_name) == repr(profile.full_name) == f"{profile.full_name}" == MASK
    assert NAME not in repr(profile.__dict__)
    with pytest.raises(TypeError):
        pickle.dumps(profile.full_name)


def test_a_saved_value_pickles_as_ciphertext_only():
    profile = profile_with_identity()

    restored = pickle.loads(pickle.dumps(profile))  # noqa: S301 - our own bytes

    assert NAME.encode() not in pickle.dumps(profile)
    assert customer_pii_read(profile=restored, fields=["full_name"], purpose="kyc_review", actor=ACTOR) == {
        "full_name": NAME
    }


def test_queries_that_would_compare_ciphertexts_or_bypass_the_row_binding_are_refused():
    profile_with_identity()

    with pytest.raises(FieldError), transaction.atomic():
        list(CustomerProfile.objects.filter(full_name=NAME))
    with pytest.raises(ValueError, match="cannot seal"), transaction.atomic():
        CustomerProfile.objects.update(full_name=NAME)
    assert CustomerProfile.objects.filter(full_name__isnull=False).count() == 1


def test_wrong_types_are_refused_before_anything_is_written():
    profile = CustomerProfile.objects.get(user=customer_create(email="t@example.com", password=None))

    from django.core.exceptions import ValidationError

    for name, value in [
        ("date_of_birth", "1984-02-29"),
        ("date_of_birth", timezone.now()),
        ("credit_score", "742"),
        ("credit_score", True),
        ("postal_address", "221B"),
        ("full_name", "x" * 201),
    ]:
        with pytest.raises(ValidationError):
            setattr(profile, name, value)


def test_phone_blind_index_finds_the_customer_without_decrypting():
    profile = profile_with_identity()
    profile_with_identity("mallory@example.com", name="Mallory", phone="+447700900999")

    found = CustomerProfile.objects.get(phone_index=field_blind_index(kind="phone", normalized_value=PHONE))

    assert found.pk == profile.pk
    assert len(found.phone_index) == 64
    assert PHONE not in found.phone_index


def test_field_envelopes_do_not_open_with_the_vault_key_ring():
    from tokenvault.crypto import envelope_open
    from tokenvault.keys import vault_key_provider

    profile = profile_with_identity()
    field = CustomerProfile._meta.get_field("full_name")

    with pytest.raises(KeyUnavailable):
        envelope_open(blob=profile.full_name.blob, aad=field.aad(profile), provider=vault_key_provider())


def test_model_change_log_masks_every_identity_field():
    profile = profile_with_identity()

    entry = LogEntry.objects.get_for_object(profile).order_by("-timestamp").first()

    assert entry.changes  # the update was logged...
    text = str(entry.changes)
    for clear in [NAME, PHONE, "1984", "Baker", "742", profile.phone_index, "tok_nid_"]:
        assert clear not in text  # ...without a value


def test_rotate_rewrap_retire_keeps_every_value_readable(field_keys):
    profiles = [
        profile_with_identity(),
        profile_with_identity("mallory@example.com", name="Mallory", phone="+447700900999"),
    ]
    provider = field_key_provider()
    assert isinstance(provider, LocalFileKeyProvider)

    keeper = operator_create(email="keys@example.com", roles=["security_admin"])
    checker = operator_create(email="keys2@example.com", roles=["security_admin"])
    out = io.StringIO()
    call_command("fields_rotate_key", stdout=out, stderr=io.StringIO(), stdin=operator_stdin(keeper))
    assert out.getvalue() == "field KEK version 2 is now current\n"
    rotated = AuditEvent.objects.get(event_type="fields.kek_rotated")
    assert (rotated.object_type, rotated.object_id) == ("field_kek", f"{FIELD_KEK_ID}:2")
    assert not AuditEvent.objects.filter(event_type="vault.kek_rotated").exists()
    assert fields_using_version(version=1) == 10  # 5 fields x 2 rows
    with pytest.raises(KekRetireTooSoon):
        field_kek_retire(version=1, actor=ACTOR)  # version 2 became current just now
    past_retire_grace(provider, 2)
    with pytest.raises(KekInUse):
        field_kek_retire(version=1, actor=ACTOR)

    first = fields_rewrap(model=CustomerProfile, batch_size=1, actor=ACTOR)
    assert (first.scanned, first.rewrapped) == (1, 1)
    assert fields_using_version(version=1) == 5
    out, err = io.StringIO(), io.StringIO()
    call_command("fields_rewrap", "--model", "accounts.CustomerProfile", "--resume-from", str(first.last_pk),
                 stdout=out, stderr=err, stdin=operator_stdin(keeper))  # fmt: skip
    assert out.getvalue() == "accounts.CustomerProfile: done, 1 rows rewrapped\n"

    assert fields_using_version(version=1) == 0
    asked = io.StringIO()
    call_command("fields_retire_key", "1", "--reason", "rotation done", stdout=asked, stderr=io.StringIO(),
                 stdin=operator_stdin(keeper))  # fmt: skip
    assert asked.getvalue().startswith("not retired yet: request ") and provider.versions() == [1, 2]
    approval = ApprovalRequest.objects.get(kind="fields.key_retire")  # four eyes (ADR 0015)
    with pytest.raises(DomainError, match="may not decide"):
        approval_request_approve(approval_id=approval.public_id, approver=keeper, change_hash=approval.change_hash,
                                 mfa_verified_at=timezone.now())  # fmt: skip
    approval_request_approve(approval_id=approval.public_id, approver=checker, change_hash=approval.change_hash,
                             mfa_verified_at=timezone.now())  # fmt: skip
    assert provider.versions() == [2]
    for profile, name in zip(profiles, [NAME, "Mallory"], strict=True):
        fresh = CustomerProfile.objects.select_related("user").get(pk=profile.pk)
        assert field_kek_version(fresh.full_name) == (FIELD_KEK_ID, 2)
        assert read_all(fresh)["full_name"] == name
    assert AuditEvent.objects.filter(event_type="fields.rewrapped").count() == 2
    assert AuditEvent.objects.filter(event_type="fields.kek_retired", object_id=f"{FIELD_KEK_ID}:1").count() == 1


def test_retiring_the_current_field_key_is_refused():
    profile_with_identity()

    with pytest.raises(CommandError, match="vault_kek_is_current"):  # refused before credentials are asked
        call_command("fields_retire_key", "1", "--reason", "tidy up", stdout=io.StringIO(), stdin=io.StringIO())


def test_deploy_check_wants_a_provisioned_field_key_directory_outside_the_repository(settings):
    from tokenvault.fields import field_key_settings_check

    assert [error.id for error in field_key_settings_check(None)] == ["tokenvault.E011"]  # the test ring generates
    settings.FIELD_KEK_GENERATE = False
    assert field_key_settings_check(None) == []
    settings.FIELD_KEK_DIR = None
    assert [error.id for error in field_key_settings_check(None)] == ["tokenvault.E012"]
    settings.FIELD_KEK_DIR = str(settings.BASE_DIR / "var" / "keys" / "field-kek")
    assert [error.id for error in field_key_settings_check(None)] == ["tokenvault.E013"]
    del settings.FIELD_KEK_DIR  # a role without field keys (the vault role)
    assert field_key_settings_check(None) == []
