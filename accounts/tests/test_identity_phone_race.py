"""Two customers racing to capture one phone number: the unique `phone_index` decides (real threads, PostgreSQL).

The national-ID race is in test_identity.py. Here each racer holds its own
national ID, so only the phone collides: the loser's IntegrityError must come
back as `identity_phone_in_use`, as a plain duplicate does, and leave nothing.
The two spellings normalise to one E.164 number, so one blind index.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from accounts.exceptions import PhoneInUse
from accounts.models import CustomerProfile
from accounts.services import customer_identity_capture
from accounts.tests.test_identity import DATABASES, actor_for, customer, identity, national_id_token
from audit.models import AuditEvent
from tokenvault.fields import field_blind_index

RACERS = (("AB123456C", "+44 20 7946 0123"), ("ZZ999999Z", "0044 20 7946 0123"))


@pytest.fixture(autouse=True)
def key_rings(tmp_path, settings):
    settings.FIELD_KEK_DIR = str(tmp_path / "field-kek")
    settings.FIELD_KEK_GENERATE = True
    settings.VAULT_KEK_DIR = str(tmp_path / "vault-kek")
    settings.VAULT_KEK_GENERATE = True


@pytest.mark.django_db(transaction=True, databases=DATABASES)
def test_two_customers_racing_with_one_phone_exactly_one_wins():
    users = [customer(f"phone-racer{n}@example.com") for n in range(len(RACERS))]
    prepared = [
        (identity(national_id=national_id, phone=phone), national_id_token(national_id))
        for national_id, phone in RACERS
    ]
    assert prepared[0][0].phone == prepared[1][0].phone  # one number, two spellings
    barrier = threading.Barrier(len(users))
    outcomes: dict[int, str] = {}

    def capture(n: int) -> None:
        held, token = prepared[n]
        try:
            barrier.wait(timeout=10)
            customer_identity_capture(user=users[n], identity=held, national_id_token=token, actor=actor_for(users[n]))
            outcomes[n] = "captured"
        except PhoneInUse as refusal:
            outcomes[n] = refusal.code
        finally:
            connections.close_all()

    threads = [threading.Thread(target=capture, args=(n,)) for n in range(len(users))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes.values()) == ["captured", "identity_phone_in_use"]
    index = field_blind_index(kind="phone", normalized_value=prepared[0][0].phone)
    assert CustomerProfile.objects.filter(phone_index=index).count() == 1
    assert CustomerProfile.objects.filter(identity_captured_at__isnull=False).count() == 1
    assert AuditEvent.objects.filter(event_type="identity.captured").count() == 1
