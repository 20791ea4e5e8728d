"""PII stays masked for every role, everywhere in the admin (issue 11, item 5).

The real admin, logged in with MFA as each role: every registered admin's list,
one detail page and one history page per model with rows carry no email in
clear (the walk goes over `admin.site._registry`, so a future admin is covered
too). Search is exact only: a whole email or public id finds the masked row, a
public id never turns into an email, a fragment finds nothing. Nobody sets a
password here. Seeing a customer's identity or email in clear goes through
"Reveal identity", which needs `audit.unmask_pii`, a purpose and a reason, and
writes `pii.read`; a refusal writes nothing.
"""

from __future__ import annotations

import datetime
import uuid
from urllib.parse import quote

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote as admin_quote
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from oauth2_provider.models import AccessToken, Application, Grant, IDToken, RefreshToken

from accounts.models import CustomerProfile, PaymentCard, User
from accounts.oauth.clients import oauth_client_register_mobile
from accounts.services import customer_create, customer_identity_capture, identity_validate, staff_create
from accounts.tests.mfa_helpers import force_login_with_mfa
from audit.masking import email_masked
from audit.models import AuditEvent
from audit.services.events import Actor
from ledger.services.accounts import account_open
from tokenvault.services import vault_tokenize
from tokenvault.tokens import token_random

DATABASES = ["default", "vault"]
TAG = uuid.uuid4().hex[:6]
ALICE = f"alice.{TAG}@demo.fintech.example"
BOB = f"bob.{TAG}@demo.fintech.example"
STAFF = {
    "compliance_officer": f"compliance.{TAG}@demo.fintech.example",
    "operations": f"operations.{TAG}@demo.fintech.example",
    "security_admin": f"security.{TAG}@demo.fintech.example",
}
ROOT = f"root.{TAG}@demo.fintech.example"
ALL_EMAILS = (ALICE, BOB, *STAFF.values(), ROOT)
ROLES = (*STAFF, "superuser")
CARD_VIEWERS = ("compliance_officer", "operations", "superuser")  # security_admin does not see cards at all
REASON = "KYC-4711: periodic review of the onboarding file"
FULL_NAME = "Zoë Quintessa-Marlowe"

pytestmark = pytest.mark.django_db(databases=DATABASES)


@pytest.fixture(autouse=True)
def key_rings(field_keys, tmp_path, settings):
    settings.VAULT_KEK_DIR = str(tmp_path / "vault-kek")
    settings.VAULT_KEK_GENERATE = True


@pytest.fixture
def people():
    """Two customers (Alice with identity, a card, an account and an OAuth app), staff of each role, a superuser."""
    alice = customer_create(email=ALICE, password=None)
    bob = customer_create(email=BOB, password=None)
    identity = identity_validate(
        full_name=FULL_NAME,
        date_of_birth=datetime.date(1984, 2, 29),
        phone="+44 20-7946 0123",
        postal_address={"line1": "221B Baker Street", "city": "London", "postal_code": "nw1 6xe", "country": "gb"},
        national_id=f"AB{uuid.uuid4().int % 10**6:06d}C",
        today=datetime.date(2026, 6, 15),
    )
    token = vault_tokenize(
        token_type="national_id", value=identity.national_id, convergent=True, actor=Actor.system("pii-admin-tests")
    ).token
    customer_identity_capture(
        user=alice, identity=identity, national_id_token=token, actor=Actor(user=str(alice.public_id))
    )
    card = PaymentCard.objects.create(
        owner=alice, token=token_random("card"), brand="visa", last4="4242", exp_month=12, exp_year=2031
    )
    account_open(owner=alice, currency="EUR", actor=Actor.system("pii-admin-tests"))
    app = oauth_client_register_mobile(
        name=f"Partner mobile {TAG}", redirect_uris=["https://app.example/cb"], actor=Actor.system("pii-admin-tests")
    )
    Application.objects.filter(pk=app.pk).update(user=alice)
    staff = {role: staff_create(email=email, password=None, roles=[role]) for role, email in STAFF.items()}
    staff["superuser"] = User.objects.create_superuser(ROOT, None)
    return {"alice": alice, "bob": bob, "card": card, "staff": staff}


def client_as(people, role: str) -> Client:
    client = Client()
    force_login_with_mfa(client, people["staff"][role])
    return client


def assert_no_email_in_clear(html: str, where: str) -> None:
    for email in ALL_EMAILS:
        local = email.partition("@")[0]
        for clear in (email, quote(email), quote(email, safe=""), local):
            assert clear not in html, f"{clear!r} in clear on {where}"


def registered_pages():
    """Every registered admin's changelist, and a detail and history page for its first row (if it has one)."""
    for model in admin.site._registry:
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        yield f"{name}_changelist", reverse(f"{name}_changelist")
        first = model._default_manager.order_by("pk").first()
        if first is None:
            continue
        for view in ("change", "history"):
            try:
                yield f"{name}_{view}", reverse(f"{name}_{view}", args=[admin_quote(first.pk)])
            except NoReverseMatch:  # a form-only admin (the vault's detokenize page)
                continue


def changelist(client: Client, model, q: str):
    return client.get(reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"), {"q": q})


def pii_reads():
    return list(AuditEvent.objects.filter(event_type="pii.read").order_by("id"))


# --- Masked everywhere --------------------------------------------------------------------------


def test_the_mask_keeps_two_initials_and_the_top_level_domain():
    assert email_masked(ALICE) == "a•••@d•••.example"
    assert email_masked("Someone@Example.COM") == "S•••@E•••.COM"
    assert email_masked("no address") == "••••"


@pytest.mark.parametrize("role", ROLES)
def test_no_admin_page_shows_an_email_in_clear(people, role):
    client = client_as(people, role)
    pages = [("admin:index", reverse("admin:index")), *registered_pages()]
    seen_ok = 0

    for where, url in pages:
        response = client.get(url)
        assert response.status_code in (200, 403), f"{where}: {response.status_code}"
        seen_ok += response.status_code == 200
        assert_no_email_in_clear(response.content.decode(), where)

    assert seen_ok >= 3  # at least the index and this role's own lists were really rendered
    if role == "superuser":  # sees everything: every page of the walk was a real page
        assert seen_ok == len(pages)


@pytest.mark.parametrize("role", ROLES)
def test_the_user_list_shows_masked_emails_and_roles(people, role):
    client = client_as(people, role)

    response = client.get(reverse("admin:accounts_user_changelist"))

    assert response.status_code == 200  # every role holds accounts.view_user
    html = response.content.decode()
    assert "a•••@d•••.example" in html
    assert str(people["alice"].public_id) in html
    assert "compliance_officer" in html  # the roles column
    assert_no_email_in_clear(html, "user list")


# --- Exact search only ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_search_by_exact_email_finds_the_masked_row(people, role):
    client = client_as(people, role)
    typed = f"  {ALICE.upper()} "  # normalised (trimmed, lowercased) before the exact lookup

    users = changelist(client, User, typed)
    cards = changelist(client, PaymentCard, typed)

    assert list(users.context["cl"].result_list) == [people["alice"]]
    assert "a•••@d•••.example" in users.content.decode()
    assert ALICE not in users.content.decode()  # only what was typed is echoed in the search box
    if role in CARD_VIEWERS:
        assert list(cards.context["cl"].result_list) == [people["card"]]
    else:
        assert cards.status_code == 403


@pytest.mark.parametrize("role", ROLES)
def test_search_by_public_id_shows_no_email(people, role):
    client = client_as(people, role)
    alice = people["alice"]

    users = changelist(client, User, str(alice.public_id))
    cards = changelist(client, PaymentCard, str(alice.public_id))
    page = client.get(reverse("admin:accounts_user_change", args=[alice.pk]))

    assert list(users.context["cl"].result_list) == [alice]
    assert cards.status_code == (200 if role in CARD_VIEWERS else 403)
    if role in CARD_VIEWERS:
        assert list(cards.context["cl"].result_list) == [people["card"]]
    for response, where in ((users, "user search"), (cards, "card search"), (page, "user page")):
        assert_no_email_in_clear(response.content.decode(), where)
    assert users.status_code == page.status_code == 200
    assert "a•••@d•••.example" in page.content.decode()


@pytest.mark.parametrize(
    "fragment",
    ["alice", f"alice.{TAG}", f"alice.{TAG}@", "@demo.fintech.example", "demo.fintech.example", ALICE[:-1], "ALICE"],
)
def test_a_fragment_of_an_email_finds_nothing(people, fragment):
    client = client_as(people, "compliance_officer")

    for model in (User, PaymentCard):
        response = changelist(client, model, fragment)
        assert response.status_code == 200
        assert list(response.context["cl"].result_list) == []


def test_cards_are_found_by_their_own_exact_public_id_or_token_only(people):
    client = client_as(people, "operations")
    card = people["card"]

    for term in (str(card.public_id), card.token):
        assert list(changelist(client, PaymentCard, term).context["cl"].result_list) == [card]
    assert list(changelist(client, PaymentCard, card.token[:-3]).context["cl"].result_list) == []


@pytest.mark.parametrize("lookup", ["email__startswith", "email__icontains", "email__regex", "email"])
def test_filtering_the_user_list_on_the_email_through_the_url_is_refused(people, lookup):
    client = client_as(people, "superuser")

    response = client.get(reverse("admin:accounts_user_changelist"), {lookup: "alice"})

    assert response.status_code == 400


def test_the_auditlog_change_log_is_searched_by_exact_actor_or_object_only(people):
    client = client_as(people, "superuser")
    from auditlog.models import LogEntry

    by_object = changelist(client, LogEntry, str(people["alice"].pk))
    substring = changelist(client, LogEntry, "alice")

    assert by_object.status_code == 200 and substring.status_code == 200
    assert by_object.context["cl"].result_count >= 1
    assert substring.context["cl"].result_count == 0


# --- Nobody edits people or their credentials here ----------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_the_password_page_and_the_add_page_are_refused_to_everyone(people, role):
    client = client_as(people, role)
    target = people["staff"]["operations"] if role != "operations" else people["alice"]
    url = f"/admin/accounts/user/{target.pk}/password/"

    assert client.get(url).status_code == 404
    assert client.post(url, {"password1": "N3w-pass-phrase!", "password2": "N3w-pass-phrase!"}).status_code == 404
    assert client.get(reverse("admin:accounts_user_add")).status_code == 403
    page = client.get(reverse("admin:accounts_user_change", args=[target.pk])).content.decode()
    assert 'name="password' not in page and f"/{target.pk}/password/" not in page  # no field, no link to set one
    target.refresh_from_db()
    assert not target.has_usable_password()


def test_third_party_admins_are_removed_or_read_only(people):
    for model in (AccessToken, RefreshToken, Grant, IDToken, TOTPDevice, StaticDevice):
        assert not admin.site.is_registered(model), model
    client = client_as(people, "superuser")
    app = Application.objects.get(user=people["alice"])

    page = client.get(reverse("admin:oauth2_provider_application_change", args=[app.pk]))
    edit = client.post(reverse("admin:oauth2_provider_application_change", args=[app.pk]), {"name": "renamed"})

    assert page.status_code == 200 and 'name="redirect_uris"' not in page.content.decode()
    assert f"user {people['alice'].public_id}" in page.content.decode()
    assert edit.status_code == 403
    assert changelist(client, Application, "alice").context["cl"].result_count == 0


# --- Reveal identity: the audited unmask ---------------------------------------------------------


def reveal_url(profile: CustomerProfile) -> str:
    return reverse("admin:accounts_customerprofile_reveal", args=[profile.pk])


def test_reveal_identity_with_purpose_and_reason_shows_the_values_and_records_one_pii_read(people):
    officer = people["staff"]["compliance_officer"]
    client = client_as(people, "compliance_officer")
    profile = CustomerProfile.objects.get(user=people["alice"])

    change_page = client.get(reverse("admin:accounts_customerprofile_change", args=[profile.pk])).content.decode()
    form_page = client.get(reveal_url(profile))
    assert 'id="reveal-identity-link"' in change_page
    assert form_page.status_code == 200 and 'id="reveal_form"' in form_page.content.decode()
    assert pii_reads() == []  # showing the form reads nothing

    response = client.post(
        reveal_url(profile), {"reveal": ["full_name", "phone", "email"], "purpose": "kyc_review", "reason": REASON}
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert FULL_NAME in html and "+442079460123" in html and ALICE in html
    assert "221B Baker Street" not in html  # only what was asked for
    assert "no-store" in response["Cache-Control"]
    [read] = pii_reads()
    assert (read.actor_staff, read.actor_user) == (str(officer.public_id), "")
    assert (read.object_type, read.object_id) == ("customer_profile", str(people["alice"].public_id))
    assert read.purpose == "kyc_review"
    assert read.payload == {"fields": ["email", "full_name", "phone"], "reason": REASON}


@pytest.mark.parametrize("role", ["operations", "security_admin"])
def test_reveal_identity_without_the_unmask_permission_is_refused_and_records_nothing(people, role):
    client = client_as(people, role)
    profile = CustomerProfile.objects.get(user=people["alice"])
    data = {"reveal": ["full_name", "email"], "purpose": "kyc_review", "reason": REASON}

    refused = [client.get(reveal_url(profile)), client.post(reveal_url(profile), data)]

    assert [response.status_code for response in refused] == [403, 403]
    for response in refused:
        assert FULL_NAME not in response.content.decode()
        assert_no_email_in_clear(response.content.decode(), "refused reveal")
    if role == "operations":  # may see the profile, not the reveal link
        page = client.get(reverse("admin:accounts_customerprofile_change", args=[profile.pk])).content.decode()
        assert "reveal-identity-link" not in page
    assert pii_reads() == []


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"reveal": ["full_name"], "purpose": "", "reason": REASON}, "purpose"),
        ({"reveal": ["full_name"], "purpose": "curiosity", "reason": REASON}, "purpose"),
        ({"reveal": ["full_name"], "purpose": "kyc_review", "reason": ""}, "reason"),
        ({"reveal": ["full_name"], "purpose": "kyc_review", "reason": "KYC 4111 1111 1111 1111 review"}, "reason"),
        ({"reveal": [], "purpose": "kyc_review", "reason": REASON}, "reveal"),
        ({"reveal": ["national_id"], "purpose": "kyc_review", "reason": REASON}, "reveal"),
    ],
)
def test_reveal_identity_without_a_valid_purpose_reason_or_field_shows_an_error_and_records_nothing(
    people, data, field
):
    client = client_as(people, "compliance_officer")
    profile = CustomerProfile.objects.get(user=people["alice"])

    response = client.post(reveal_url(profile), data)

    assert response.status_code == 200
    assert list(response.context["form"].errors) == [field]
    assert FULL_NAME not in response.content.decode()
    assert "4111 1111 1111 1111" not in response.content.decode()
    assert_no_email_in_clear(response.content.decode(), "invalid reveal")
    assert pii_reads() == []


def test_before_identity_capture_only_the_email_can_be_revealed(people):
    client = client_as(people, "compliance_officer")
    profile = CustomerProfile.objects.get(user=people["bob"])

    refused = client.post(reveal_url(profile), {"reveal": ["full_name"], "purpose": "kyc_review", "reason": REASON})
    assert list(refused.context["form"].errors) == ["reveal"]
    assert pii_reads() == []

    response = client.post(reveal_url(profile), {"reveal": ["email"], "purpose": "kyc_review", "reason": REASON})

    assert BOB in response.content.decode()
    [read] = pii_reads()
    assert (read.object_id, read.payload["fields"]) == (str(people["bob"].public_id), ["email"])
