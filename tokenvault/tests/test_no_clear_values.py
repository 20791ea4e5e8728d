"""Acceptance (issue 6): after cards and national IDs go through the API, no dump and no log holds a number.

Positive controls make the search meaningful: the dumps must hold the tokens
and the fragments we do keep, so an empty or wrong dump fails the test.
"""

from __future__ import annotations

import json
import logging
import re
import uuid

import pytest
from django.test import Client

from accounts.services import customer_create
from accounts.tests.access_matrix import issue_token
from accounts.tests.oauth_helpers import mobile_client
from conftest import database_dump

CARDS = ["4111 1111 1111 1111", "5555-5555-5555-4444", "3782 822463 10005", "6011000990139424"]


def spellings(value: str) -> set[str]:
    """The value as digits only, in groups of four with spaces or dashes, and as typed."""
    compact = re.sub(r"[\s-]", "", value)
    groups = [compact[i : i + 4] for i in range(0, len(compact), 4)]
    return {value, compact, " ".join(groups), "-".join(groups)}


def save_card(number: str) -> dict:
    owner = customer_create(email=f"dump.{uuid.uuid4().hex[:8]}@example.com", password=None)
    token = issue_token(application=mobile_client(), user=owner, scope="cards:write")
    response = Client().post(
        "/v1/cards",
        data=json.dumps({"number": number, "exp_month": 7, "exp_year": 2032, "holder": "Dump Test"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )
    assert response.status_code == 201, response.content
    return response.json()


@pytest.mark.django_db(transaction=True, databases=["default", "vault"])
def test_neither_database_dump_nor_the_logs_hold_a_card_number(vault_live, caplog):
    caplog.set_level(logging.DEBUG)
    saved = [save_card(number) for number in CARDS]

    main_dump, vault_dump = database_dump("default"), database_dump("vault")
    logs = caplog.text + vault_live.log_text()

    for card in saved:  # the dumps are of the databases the API wrote to
        assert card["token"] in main_dump
        assert card["token"] in vault_dump
    for number in CARDS:
        for spelling in spellings(number):
            assert spelling not in main_dump, f"a card number is in the main database dump ({spelling[-4:]})"
            assert spelling not in vault_dump, f"a card number is in the vault database dump ({spelling[-4:]})"
            assert spelling not in logs, f"a card number is in the logs ({spelling[-4:]})"
            # bytea columns are dumped as hex: a number stored in clear bytes would show up so
            assert spelling.encode().hex() not in main_dump
            assert spelling.encode().hex() not in vault_dump
