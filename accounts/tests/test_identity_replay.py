"""A replayed identity capture answers from the idempotency record and never asks the vault again.

The national ID goes to the vault only when the capture actually runs: a retry
with the same Idempotency-Key gets the stored answer (ADR 0006), even while the
vault is down, and the national ID is not sent anywhere a second time.
"""

from __future__ import annotations

import pytest

from accounts.tests.test_identity_api import LIVE, new_customer, put
from conftest import free_port

pytestmark = pytest.mark.usefixtures("field_keys")  # accounts/tests/conftest.py
BODY = {
    "full_name": "Grace Brewster Hopper",
    "date_of_birth": "1986-12-09",
    "phone": "+442079460733",
    "address": {"line1": "1 Navy Way", "city": "Arlington", "postal_code": "VA22", "country": "US"},
    "national_id": "RP445566T",
}


@LIVE
def test_a_stored_refusal_is_replayed_while_the_vault_is_down(vault_live, settings):
    _, first_token = new_customer()
    first = put(first_token, BODY, key="replay-first")
    assert first.status_code == 200, first.content
    _, token = new_customer()
    refused = put(token, {**BODY, "national_id": "RP445567T"}, key="replay-second")  # the phone is taken
    assert (refused.status_code, refused.json()["code"]) == (409, "identity_phone_in_use")

    settings.VAULT_URL = f"http://127.0.0.1:{free_port()}"  # the vault goes down
    replay = put(token, {**BODY, "national_id": "RP445567T"}, key="replay-second")

    assert replay.status_code == 409, replay.content
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == refused.json()
