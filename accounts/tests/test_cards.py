"""/v1/cards against a real vault process: the number goes to the vault and nowhere else."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from django.db import connection
from django.test import Client

from accounts.cards.services import ACTIVE_CARDS_MAX
from accounts.models import PaymentCard
from accounts.services import customer_create
from accounts.tests.access_matrix import issue_token
from accounts.tests.oauth_helpers import mobile_client
from audit.models import AuditEvent
from conftest import free_port
from fintech.models import IdempotencyRecord
from tokenvault.models import VaultRecord

VISA = "4111 1111 1111 1111"
VISA_DIGITS = "4111111111111111"
MASTERCARD = "5555-5555-5555-4444"
# The vault process commits its rows: tests that reach it are transactional (root conftest `vault_live`).
LIVE = pytest.mark.django_db(transaction=True, databases=["default", "vault"])
OFFLINE = pytest.mark.django_db(databases=["default", "vault"])


@pytest.fixture
def owner():
    return customer_create(email=f"cards.{uuid.uuid4().hex[:8]}@example.com", password=None)


@pytest.fixture
def token(owner):
    return issue_token(application=mobile_client(), user=owner, scope="cards:read cards:write")


def save(client, token, number=VISA, key=None, **overrides):
    body = {"number": number, "exp_month": 12, "exp_year": 2031, "holder": "Ada Lovelace", **overrides}
    return client.post(
        "/v1/cards",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_IDEMPOTENCY_KEY=key or uuid.uuid4().hex,
    )


def delete(client, token, card_id, key=None):
    return client.delete(
        f"/v1/cards/{card_id}", HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_IDEMPOTENCY_KEY=key or uuid.uuid4().hex
    )


def listed(client, token) -> list[dict]:
    response = client.get("/v1/cards", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    return response.json()["results"]


@LIVE
class TestSave:
    def test_a_card_is_vaulted_and_only_its_token_and_fragments_come_back(self, client, token, owner, vault_live):
        response = save(client, token)

        assert response.status_code == 201, response.content
        body = response.json()
        assert set(body) == {"id", "token", "brand", "last4", "exp_month", "exp_year", "created_at"}
        assert body["token"].startswith("tok_card_")
        assert (body["brand"], body["last4"], body["exp_month"], body["exp_year"]) == ("visa", "1111", 12, 2031)
        assert VISA_DIGITS not in response.content.decode()
        card = PaymentCard.objects.get(owner=owner)
        assert card.token == body["token"]
        vaulted = VaultRecord.objects.using("vault").get(token=body["token"])
        assert VISA_DIGITS.encode() not in bytes(vaulted.ciphertext)
        assert AuditEvent.objects.filter(event_type="card.saved", object_id=body["id"]).count() == 1

    def test_the_same_card_twice_gets_two_tokens_so_deleting_one_never_shreds_the_other(
        self, client, token, vault_live
    ):
        first = save(client, token).json()
        second = save(client, token).json()

        assert first["token"] != second["token"]


@OFFLINE
class TestRefusedWithoutTheVault:
    @pytest.mark.parametrize(
        ("number", "code"),
        [
            ("4111 1111 1111 1112", "vault_invalid_card_number"),  # Luhn
            ("4111 1111 1111", "vault_invalid_card_number"),  # length
            ("9111 1111 1111 1116", "vault_invalid_card_number"),  # no brand issues this prefix
            ("4111a111 1111 1111", "vault_invalid_card_number"),
        ],
    )
    def test_an_invalid_number_is_refused_without_asking_the_vault_and_never_echoed(
        self, client, token, vault_down, number, code
    ):
        response = save(client, token, number=number)

        assert response.status_code == 400
        assert response.json()["code"] == code
        assert "1111" not in response.content.decode()
        assert not PaymentCard.objects.exists()
        assert not IdempotencyRecord.objects.exists()

    def test_an_expired_card_is_refused(self, client, token, vault_down):
        response = save(client, token, exp_month=1, exp_year=2020)

        assert response.status_code == 400
        assert response.json()["code"] == "card_expired"

    def test_missing_fields_are_a_validation_problem(self, client, token, vault_down):
        response = client.post(
            "/v1/cards",
            data=json.dumps({"number": VISA}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
            HTTP_IDEMPOTENCY_KEY="k-missing",
        )

        assert response.status_code == 400
        assert VISA_DIGITS not in response.content.decode()
        assert "4111" not in response.content.decode()

    def test_with_the_vault_down_it_is_503_and_nothing_is_written(self, client, token, owner, vault_down):
        down = save(client, token, key="card-key-1")

        assert down.status_code == 503
        assert down["Content-Type"] == "application/problem+json"
        assert down.json()["code"] == "vault_unavailable"
        assert not PaymentCard.objects.exists()
        assert not IdempotencyRecord.objects.exists()

    def test_a_client_only_token_cannot_save_a_card(self, client, vault_down):
        from accounts.tests.oauth_helpers import partner_client

        partner, _ = partner_client()
        token = issue_token(application=partner, user=None, scope="cards:write")

        assert save(client, token).status_code == 403


@LIVE
def test_a_save_refused_for_a_vault_outage_succeeds_with_the_same_key_once_it_is_back(
    client, token, owner, vault_live, settings
):
    settings.VAULT_URL = f"http://127.0.0.1:{free_port()}"  # the vault unreachable
    down = save(client, token, key="card-key-2")
    settings.VAULT_URL = vault_live.url

    back = save(client, token, key="card-key-2")

    assert down.status_code == 503
    assert back.status_code == 201, back.content
    assert "Idempotent-Replayed" not in back
    assert PaymentCard.objects.filter(owner=owner).count() == 1


@LIVE
class TestListAndDelete:
    def test_a_customer_lists_only_their_own_live_cards(self, client, token, vault_live):
        other = customer_create(email="cards.other@example.com", password=None)
        other_token = issue_token(application=mobile_client(), user=other, scope="cards:read cards:write")
        mine = save(client, token).json()
        save(client, other_token, number=MASTERCARD)

        assert [card["id"] for card in listed(client, token)] == [mine["id"]]

    def test_deleting_a_card_shreds_its_vault_value_and_hides_it(self, client, token, vault_live):
        card = save(client, token).json()

        response = delete(client, token, card["id"])

        assert response.status_code == 204
        assert response.content == b""
        assert listed(client, token) == []
        record = VaultRecord.objects.using("vault").get(token=card["token"])
        assert record.shredded_at is not None and bytes(record.ciphertext) == b""
        assert PaymentCard.objects.get(public_id=card["id"]).status == PaymentCard.Status.DELETED
        assert delete(client, token, card["id"]).status_code == 404

    def test_another_customers_card_is_404_and_stays_intact(self, client, token, vault_live):
        card = save(client, token).json()
        other = customer_create(email="cards.thief@example.com", password=None)
        other_token = issue_token(application=mobile_client(), user=other, scope="cards:read cards:write")

        assert delete(client, other_token, card["id"]).status_code == 404
        assert client.get(f"/v1/cards/{card['id']}", HTTP_AUTHORIZATION=f"Bearer {other_token}").status_code == 404
        assert VaultRecord.objects.using("vault").get(token=card["token"]).shredded_at is None

    def test_with_the_vault_down_a_delete_is_503_and_the_card_stays(self, client, token, owner, vault_down):
        card = PaymentCard.objects.create(
            owner=owner, token="tok_card_" + "A" * 26, brand="visa", last4="1111", exp_month=1, exp_year=2031
        )

        response = delete(client, token, card.public_id)

        assert response.status_code == 503
        card.refresh_from_db()
        assert card.status == PaymentCard.Status.ACTIVE


@LIVE
def test_racing_saves_never_exceed_the_per_customer_limit_and_losers_are_shredded(vault_live):
    owner = customer_create(email="cards.race@example.com", password=None)
    token = issue_token(application=mobile_client(), user=owner, scope="cards:read cards:write")
    for n in range(ACTIVE_CARDS_MAX - 1):
        PaymentCard.objects.create(
            owner=owner, token=f"tok_card_{n:026d}", brand="visa", last4="1111", exp_month=1, exp_year=2031
        )
    barrier = threading.Barrier(6)
    statuses: list[int] = []
    lock = threading.Lock()

    def attempt():
        try:
            barrier.wait()
            response = save(Client(), token)
            with lock:
                statuses.append(response.status_code)
        finally:
            connection.close()

    before = set(VaultRecord.objects.using("vault").values_list("token", flat=True))
    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(statuses) == [201] + [409] * 5
    assert PaymentCard.objects.filter(owner=owner, status="active").count() == ACTIVE_CARDS_MAX
    tokens = set(VaultRecord.objects.using("vault").values_list("token", flat=True)) - before
    live = VaultRecord.objects.using("vault").filter(token__in=tokens, shredded_at__isnull=True)
    # Losers may be refused before tokenizing (the cheap pre-check) or after (then shredded): never left live.
    assert list(live.values_list("token", flat=True)) == list(
        PaymentCard.objects.filter(owner=owner, token__in=tokens).values_list("token", flat=True)
    )


@OFFLINE
def test_compliance_sees_cards_in_the_admin_as_fragments_only_and_cannot_change_them(client, owner):
    from accounts.services import staff_create
    from accounts.tests.mfa_helpers import force_login_with_mfa

    card = PaymentCard(
        owner=owner, token="tok_card_" + "B" * 26, brand="visa", last4="4242", exp_month=3, exp_year=2033
    )
    card.holder = "Grace Brewster Hopper"
    card.save()
    officer = staff_create(email="cards.officer@fintech.example", password=None, roles=["compliance_officer"])
    force_login_with_mfa(client, officer)

    listing = client.get("/admin/accounts/paymentcard/")
    detail = client.get(f"/admin/accounts/paymentcard/{card.pk}/change/")

    assert listing.status_code == detail.status_code == 200
    assert "4242" in listing.content.decode()
    for page in (listing, detail):
        assert "Hopper" not in page.content.decode()
    assert client.post(f"/admin/accounts/paymentcard/{card.pk}/delete/", {"post": "yes"}).status_code == 403
    assert PaymentCard.objects.filter(pk=card.pk, status="active").exists()


@LIVE
def test_a_card_whose_token_the_vault_does_not_know_can_still_be_deleted(client, token, owner, vault_live):
    card = PaymentCard.objects.create(
        owner=owner, token="tok_card_" + "c" * 26, brand="visa", last4="1111", exp_month=1, exp_year=2031
    )

    response = delete(client, token, card.public_id)

    assert response.status_code == 204, response.content
    card.refresh_from_db()
    assert card.status == PaymentCard.Status.DELETED
    event = AuditEvent.objects.get(event_type="card.deleted", object_id=str(card.public_id))
    assert event.payload["vault_token_unknown"] is True


@OFFLINE
def test_the_holder_is_sealed_to_the_cards_owner(owner):
    from django.db import connection as main

    from tokenvault.exceptions import CiphertextTampered
    from tokenvault.fields import field_open

    other = customer_create(email=f"cards.{uuid.uuid4().hex[:8]}@example.com", password=None)
    card = PaymentCard(
        owner=owner, token="tok_card_" + "d" * 26, brand="visa", last4="1111", exp_month=1, exp_year=2031
    )
    card.holder = "Katherine Johnson"
    card.save()
    with main.cursor() as cursor:
        cursor.execute("SELECT holder FROM accounts_paymentcard WHERE id = %s", [card.pk])
        assert b"Johnson" not in bytes(cursor.fetchone()[0])
    assert field_open(instance=PaymentCard.objects.get(pk=card.pk), field_name="holder") == "Katherine Johnson"
    with main.cursor() as cursor:
        cursor.execute("UPDATE accounts_paymentcard SET owner_id = %s WHERE id = %s", [other.pk, card.pk])

    moved = PaymentCard.objects.select_related("owner").get(pk=card.pk)
    with pytest.raises(CiphertextTampered):
        field_open(instance=moved, field_name="holder")
