"""Identity capture: validation, once-only, duplicates across customers (also raced), masked reads.

The vault side here is the real vault service in this process (its own
database, real crypto); the HTTP client and the separate vault process are
exercised in test_identity_api.py.
"""

from __future__ import annotations

import datetime
import threading

import pytest
from django.db import connection, connections

from accounts.exceptions import IdentityAlreadyCaptured, InvalidIdentity, NationalIdInUse, PhoneInUse
from accounts.models import CustomerProfile
from accounts.selectors import customer_identity_masked
from accounts.services import (
    customer_create,
    customer_identity_capture,
    identity_validate,
    phone_e164_normalize,
)
from audit.models import AuditEvent
from audit.services.events import Actor
from tokenvault.exceptions import InvalidNationalId
from tokenvault.fields import field_blind_index
from tokenvault.services import vault_tokenize

DATABASES = ["default", "vault"]
TODAY = datetime.date(2026, 6, 15)
NATIONAL_ID = "AB 123456 C"


@pytest.fixture(autouse=True)
def key_rings(field_keys, tmp_path, settings):
    settings.VAULT_KEK_DIR = str(tmp_path / "vault-kek")
    settings.VAULT_KEK_GENERATE = True


def identity(**overrides):
    values = {
        "full_name": "  Zoë   Quintessa-Marlowe ",
        "date_of_birth": datetime.date(1984, 2, 29),
        "phone": "+44 20-7946 0123",
        "postal_address": {"line1": "221B Baker Street", "city": "London", "postal_code": "nw1 6xe", "country": "gb"},
        "national_id": NATIONAL_ID,
        "today": TODAY,
    }
    values.update(overrides)
    return identity_validate(**values)


def national_id_token(value: str = NATIONAL_ID) -> str:
    return vault_tokenize(
        token_type="national_id", value=value, convergent=True, actor=Actor.system("identity-tests")
    ).token


def customer(email: str):
    return customer_create(email=email, password=None)


def actor_for(user) -> Actor:
    return Actor(user=str(user.public_id), client="identity-tests")


# --- validation -------------------------------------------------------------------------------


def test_identity_is_normalised():
    captured = identity()

    assert captured.full_name == "Zoë Quintessa-Marlowe"
    assert captured.phone == "+442079460123"
    assert captured.postal_address == {
        "city": "London",
        "country": "GB",
        "line1": "221B Baker Street",
        "postal_code": "NW1 6XE",
    }
    assert captured.national_id == "AB123456C"
    assert "Zo" not in repr(captured) and "AB123456C" not in repr(captured)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("+44 20 7946 0123", "+442079460123"),
        ("0044-20-7946-0123", "+442079460123"),
        ("+44 (20) 7946-0123", "+442079460123"),
        ("+1 (202) 555.0100", "+12025550100"),
        ("+33 1 99 00 12 34", "+33199001234"),
    ],
)
def test_phone_numbers_normalise_to_e164(raw, normalised):
    assert phone_e164_normalize(raw) == normalised


@pytest.mark.parametrize("raw", ["+4402079460123", "+44 020 7946 0123", "+44 (0)20 7946 0123", "0044 020 7946 0123"])
def test_a_kept_trunk_zero_is_the_same_number(raw):
    """A shape check took `+44 0…` as a second number: a second blind index, a second customer on one phone."""
    assert phone_e164_normalize(raw) == phone_e164_normalize("+442079460123") == "+442079460123"


@pytest.mark.parametrize(
    "raw",
    [
        "02079460123",  # national: which country is a guess
        "+0442079460123",
        "+44",
        "+44 1234",  # the right shape for E.164, too short for the UK plan
        "+44 7700 900123",  # Ofcom's drama range: never assigned, so not a valid number
        "+1 555 555 5555",  # no such US area code
        "+999 1234 5678",  # no such country code
        "+4420794601234567",
        "+44 2O 7946 0123",  # letters would be read as keypad digits
        "+1-800-FLOWERS",
        "+44 20 7946 0123 ext 12",  # an extension would be dropped
        "tel:+44-20-7946-0123",
        "+44 20 7946 0123\u0660",
        "+44 20 7946 0\uff11\uff12\uff13",  # full-width digits
        "+" + "1" * 40,
        "",
    ],
)
def test_phone_numbers_that_are_not_valid_international_numbers_are_refused(raw):
    with pytest.raises(InvalidIdentity) as raised:
        phone_e164_normalize(raw)

    assert raised.value.code == "identity_invalid"


@pytest.mark.parametrize("raw", ["+44 1234 5678", "0161 496 0987", "+33 1 99 00 98 76 ext 12", "+44 (0) 1234 5678"])
def test_a_refused_phone_never_echoes_the_number(raw):
    """The detail reaches the client and logs: no run of four of the number's digits, however spaced."""
    with pytest.raises(InvalidIdentity) as raised:
        phone_e164_normalize(raw)

    digits = "".join(char for char in raw if char.isdigit())
    detail_digits = "".join(char for char in raised.value.detail if char.isdigit())
    assert not [digits[i : i + 4] for i in range(len(digits) - 3) if digits[i : i + 4] in detail_digits]


def test_a_phone_that_is_not_text_is_refused():
    with pytest.raises(InvalidIdentity):
        phone_e164_normalize(442079460123)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"date_of_birth": TODAY}, "in the past"),
        ({"date_of_birth": datetime.date(2030, 1, 1)}, "in the past"),
        ({"date_of_birth": datetime.date(1899, 12, 31)}, "in the past"),
        ({"date_of_birth": datetime.date(2008, 6, 16)}, "at least 18"),  # 18 tomorrow
        ({"full_name": "   "}, "full_name is required"),
        ({"full_name": "Zoë\u0000Marlowe"}, "printable"),
        ({"postal_address": {"line1": "x", "city": "y", "postal_code": "1", "country": "GB"}}, "postal_code"),
        ({"postal_address": {"line1": "x", "city": "y", "postal_code": "SW1", "country": "GBR"}}, "country"),
        ({"postal_address": {"line1": "x", "city": "y", "postal_code": "SW1", "country": "GB", "x": "1"}}, "only"),
    ],
)
def test_invalid_identities_are_refused_with_a_stable_code(overrides, message):
    with pytest.raises(InvalidIdentity, match=message) as raised:
        identity(**overrides)

    assert raised.value.code == "identity_invalid"


def test_an_adult_born_on_this_day_eighteen_years_ago_is_accepted():
    assert identity(date_of_birth=datetime.date(2008, 6, 15)).date_of_birth == datetime.date(2008, 6, 15)


def test_the_national_id_is_checked_by_the_vaults_own_rules():
    with pytest.raises(InvalidNationalId):
        identity(national_id="12")


# --- capture ----------------------------------------------------------------------------------


@pytest.mark.django_db(databases=DATABASES)
def test_capture_stores_encrypted_values_a_token_and_an_audit_row_and_reads_back_masked():
    user = customer("zoe@example.com")
    token = national_id_token()

    profile = customer_identity_capture(user=user, identity=identity(), national_id_token=token, actor=actor_for(user))

    stored = CustomerProfile.objects.select_related("user").get(user=user)
    assert stored.national_id_token == token and token.startswith("tok_nid_")
    assert stored.phone_index == field_blind_index(kind="phone", normalized_value="+442079460123")
    assert stored.identity_captured_at == profile.identity_captured_at
    event = AuditEvent.objects.get(event_type="identity.captured")
    assert (event.object_id, event.payload, event.actor_user) == (
        str(user.public_id),
        {"country": "GB"},
        str(user.public_id),
    )
    assert customer_identity_masked(profile=stored, actor=actor_for(user)) == {
        "captured": True,
        "captured_at": stored.identity_captured_at,
        "full_name": "Z*** Q***",
        "birth_year": 1984,
        "phone": "+44•••••••123",
        "address": {"country": "GB", "postal_code": "NW•••"},
        "national_id_on_file": True,
    }
    read = AuditEvent.objects.get(event_type="pii.read")
    assert (read.purpose, read.payload["fields"]) == (
        "customer_request",
        ["date_of_birth", "full_name", "phone", "postal_address"],
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(p)::text FROM accounts_customerprofile p WHERE id = %s", [stored.pk])
        row = cursor.fetchone()[0]
    for clear in ["AB123456C", "Marlowe", "2079460123", "Baker Street", "1984-02-29"]:
        assert clear not in row and clear.encode().hex() not in row


@pytest.mark.django_db(databases=DATABASES)
def test_a_profile_without_identity_reads_as_not_captured_and_records_no_read():
    user = customer("new@example.com")

    assert customer_identity_masked(profile=user.customer_profile, actor=actor_for(user)) == {"captured": False}
    assert not AuditEvent.objects.filter(event_type="pii.read").exists()


@pytest.mark.django_db(databases=DATABASES)
def test_identity_is_captured_once():
    user = customer("zoe@example.com")
    token = national_id_token()
    customer_identity_capture(user=user, identity=identity(), national_id_token=token, actor=actor_for(user))

    with pytest.raises(IdentityAlreadyCaptured):
        customer_identity_capture(
            user=user, identity=identity(full_name="Someone Else"), national_id_token=token, actor=actor_for(user)
        )

    profile = CustomerProfile.objects.select_related("user").get(user=user)
    assert customer_identity_masked(profile=profile, actor=actor_for(user))["full_name"] == "Z*** Q***"
    assert AuditEvent.objects.filter(event_type="identity.captured").count() == 1


@pytest.mark.django_db(databases=DATABASES)
def test_a_national_id_another_customer_holds_is_refused_without_saying_who():
    first, second = customer("first@example.com"), customer("second@example.com")
    customer_identity_capture(
        user=first, identity=identity(), national_id_token=national_id_token(), actor=actor_for(first)
    )

    with pytest.raises(NationalIdInUse) as raised:
        customer_identity_capture(
            user=second,
            identity=identity(phone="+442079460999", national_id="ab-123456-c"),
            national_id_token=national_id_token("ab-123456-c"),  # convergent: the same token
            actor=actor_for(second),
        )

    assert raised.value.code == "identity_national_id_in_use"
    assert str(first.public_id) not in raised.value.detail and "first@" not in raised.value.detail
    untouched = CustomerProfile.objects.get(user=second)
    assert (untouched.identity_captured_at, untouched.full_name, untouched.phone_index) == (None, None, None)


@pytest.mark.django_db(databases=DATABASES)
def test_a_phone_another_customer_holds_is_refused():
    first, second = customer("first@example.com"), customer("second@example.com")
    customer_identity_capture(
        user=first, identity=identity(), national_id_token=national_id_token(), actor=actor_for(first)
    )

    with pytest.raises(PhoneInUse):
        customer_identity_capture(
            user=second,
            identity=identity(phone="0044 20 7946 0123", national_id="ZZ999999Z"),
            national_id_token=national_id_token("ZZ999999Z"),
            actor=actor_for(second),
        )

    assert CustomerProfile.objects.get(user=second).identity_captured_at is None


@pytest.mark.django_db(databases=DATABASES)
def test_a_kept_trunk_zero_collides_on_the_phone_index():
    first, second = customer("first@example.com"), customer("second@example.com")
    held = identity(phone="+442079460123")
    customer_identity_capture(user=first, identity=held, national_id_token=national_id_token(), actor=actor_for(first))

    with pytest.raises(PhoneInUse):
        customer_identity_capture(
            user=second,
            identity=identity(phone="+4402079460123", national_id="ZZ999999Z"),
            national_id_token=national_id_token("ZZ999999Z"),
            actor=actor_for(second),
        )

    index = CustomerProfile.objects.get(user=first).phone_index
    assert index == field_blind_index(kind="phone", normalized_value="+442079460123")
    assert CustomerProfile.objects.get(user=second).phone_index is None


@pytest.mark.django_db(transaction=True, databases=DATABASES)
def test_two_customers_racing_with_one_national_id_exactly_one_wins():
    users = [customer(f"racer{n}@example.com") for n in range(2)]
    token = national_id_token()
    barrier = threading.Barrier(len(users))
    outcomes: dict[int, str] = {}

    def capture(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            customer_identity_capture(
                user=users[n],
                identity=identity(phone=f"+4420794601{n:02d}"),
                national_id_token=token,
                actor=actor_for(users[n]),
            )
            outcomes[n] = "captured"
        except NationalIdInUse as refusal:
            outcomes[n] = refusal.code
        finally:
            connections.close_all()

    threads = [threading.Thread(target=capture, args=(n,)) for n in range(len(users))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes.values()) == ["captured", "identity_national_id_in_use"]
    assert CustomerProfile.objects.filter(national_id_token=token).count() == 1
    assert CustomerProfile.objects.filter(identity_captured_at__isnull=False).count() == 1
    assert AuditEvent.objects.filter(event_type="identity.captured").count() == 1


@pytest.mark.django_db(databases=DATABASES)
def test_compliance_sees_identity_only_as_on_file_in_the_admin(client):
    from django.urls import reverse

    from accounts.services import staff_create
    from accounts.tests.mfa_helpers import force_login_with_mfa

    user = customer("zoe@example.com")
    customer_identity_capture(
        user=user, identity=identity(), national_id_token=national_id_token(), actor=actor_for(user)
    )
    profile = CustomerProfile.objects.get(user=user)
    force_login_with_mfa(
        client, staff_create(email="officer@fintech.example", password=None, roles=["compliance_officer"])
    )

    page = client.get(reverse("admin:accounts_customerprofile_change", args=[profile.pk]))
    listing = client.get(reverse("admin:accounts_customerprofile_changelist"))

    assert page.status_code == 200 and listing.status_code == 200
    html = page.content.decode()
    assert html.count("•••• on file (encrypted)") == 4  # name, birth date, phone, address; no credit score yet
    assert "•••• in the token vault" in html
    for clear in ["Zoë", "Marlowe", "2079460123", "Baker", "1984", profile.national_id_token, profile.phone_index]:
        assert clear not in html
        assert clear not in listing.content.decode()
    assert not AuditEvent.objects.filter(event_type="pii.read").exists()  # nothing was decrypted


@pytest.mark.django_db(databases=DATABASES)
def test_a_credit_score_is_stored_encrypted_and_read_only_through_the_audited_selector():
    from accounts.selectors import customer_pii_read
    from accounts.services import customer_credit_score_set

    user = customer("score@example.com")
    staff = Actor(staff="staff-credit-desk")

    customer_credit_score_set(user=user, score=712, actor=staff)

    profile = CustomerProfile.objects.select_related("user").get(user=user)
    assert str(profile.credit_score) == "Sealed(****)"
    assert customer_pii_read(profile=profile, fields=["credit_score"], purpose="kyc_review", actor=staff) == {
        "credit_score": 712
    }
    recorded = AuditEvent.objects.get(event_type="credit_score.recorded")
    assert (recorded.object_id, recorded.payload) == (str(user.public_id), {})
    assert recorded.actor_staff == "staff-credit-desk"
    for bad in [299, 851, "700", 700.0]:
        with pytest.raises(InvalidIdentity):
            customer_credit_score_set(user=user, score=bad, actor=staff)
