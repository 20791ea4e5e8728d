"""No card number in the free text staff and partners type outside the ledger: reasons and key names."""

from __future__ import annotations

import pytest
from oauth2_provider.models import Application

from accounts.api_keys.services import partner_api_key_issue, partner_api_key_revoke
from accounts.models import PartnerApiKey
from audit.forms import UnmaskActorForm
from audit.models import AuditEvent
from audit.services.events import Actor, pii_read_record
from fintech.free_text import ReferenceContainsCardNumber
from tokenvault.admin import DetokenizeForm
from tokenvault.apis import DetokenizeApi as PartnerDetokenizeApi
from tokenvault.internal_apis import DetokenizeApi as VaultDetokenizeApi

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")
CARD_REASON = "case 42: customer read out 4111 1111 1111 1111"


def partner_application() -> Application:
    return Application.objects.create(
        name="Partner",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
    )


def test_an_api_key_name_holding_a_card_is_refused():
    with pytest.raises(ReferenceContainsCardNumber) as refused:
        partner_api_key_issue(
            application=partner_application(), name="4111-1111-1111-1111", scopes="accounts:read",
            expires_in_days=30, actor=SYSTEM,
        )  # fmt: skip

    assert refused.value.extra["errors"][0]["field"] == "name"
    assert not PartnerApiKey.objects.exists()


def test_a_revoke_reason_holding_a_card_is_refused_and_the_key_stays_usable():
    api_key, _raw = partner_api_key_issue(
        application=partner_application(), name="erp", scopes="accounts:read", expires_in_days=30, actor=SYSTEM
    )

    with pytest.raises(ReferenceContainsCardNumber):
        partner_api_key_revoke(prefix=api_key.prefix, reason=CARD_REASON, actor=SYSTEM)

    api_key.refresh_from_db()
    assert (api_key.revoked_at, api_key.revoked_reason) == (None, "")
    assert not AuditEvent.objects.filter(event_type="api_key.revoked").exists()


def test_a_pii_read_with_a_reason_holding_a_card_is_refused_before_it_is_recorded():
    with pytest.raises(ReferenceContainsCardNumber):
        pii_read_record(
            actor=SYSTEM, object_type="accounts.user", object_id="u1", fields=["email"], purpose="kyc_review",
            reason=CARD_REASON,
        )  # fmt: skip

    assert not AuditEvent.objects.filter(event_type="pii.read").exists()


@pytest.mark.parametrize("form_class", [UnmaskActorForm, DetokenizeForm], ids=["audit unmask", "vault detokenize"])
def test_admin_forms_show_a_card_in_the_reason_as_a_field_error(form_class):
    form = form_class(data={"purpose": "kyc_review", "reason": CARD_REASON, "tokens": "tok_card_x"})

    assert not form.is_valid()
    assert [error.code for error in form.errors.as_data()["reason"]] == ["reference_contains_card_number"]


@pytest.mark.parametrize("api", [PartnerDetokenizeApi, VaultDetokenizeApi], ids=["partner api", "vault role api"])
def test_detokenize_reasons_holding_a_card_are_refused_during_validation(api):
    given = api.InputSerializer(
        data={
            "actor": {"client": "c"},
            "tokens": ["tok_card_x"],
            "purpose": "kyc_review",
            "permitted_token_types": ["card"],
            "reason": CARD_REASON,
        }
    )

    with pytest.raises(ReferenceContainsCardNumber):
        given.is_valid()
