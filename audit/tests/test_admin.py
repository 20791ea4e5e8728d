"""The compliance officers' admin: masked by default, read-only for everyone, every unmask recorded."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import User
from accounts.services import customer_create, staff_create
from accounts.tests.mfa_helpers import force_login_with_mfa
from audit.admin import email_masked
from audit.models import (
    AuditArchive,
    AuditCheckpoint,
    AuditEvent,
    AuditSeal,
    AuditSigningKey,
    AuditVerification,
)
from audit.services.events import Actor, audit_event_record
from audit.services.sealing import audit_events_seal
from audit.services.verification import audit_trail_verify

pytestmark = pytest.mark.django_db

CUSTOMER_EMAIL = "alice@example.com"
CUSTOMER_EMAIL_MASKED = "a•••@e•••.com"
OFFICER_EMAIL = "olivia@fintech.example"
REASON = "Ticket 4711: chargeback dispute review"
EVENT_LIST_URL = reverse("admin:audit_auditevent_changelist")
CHECKPOINT_LIST_URL = reverse("admin:audit_auditcheckpoint_changelist")
VERIFY_URL = reverse("admin:audit_auditcheckpoint_verify")


def change_url(event: AuditEvent) -> str:
    return reverse("admin:audit_auditevent_change", args=[event.pk])


def unmask_url(event: AuditEvent) -> str:
    return reverse("admin:audit_auditevent_unmask", args=[event.pk])


def pii_reads() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type="pii.read").order_by("id"))


def api_call(actor_user: User, *, request_id: str = "", object_id: str = "") -> AuditEvent:
    request = None
    if request_id:
        request = RequestFactory().get("/v1/accounts")
        request.request_id = request_id
        request.client_ip = "203.0.113.7"
    return audit_event_record(
        event_type="api.call",
        outcome="success",
        actor=Actor(user=str(actor_user.public_id)),
        object_type="ledger.account" if object_id else "",
        object_id=object_id,
        payload={"method": "GET", "path": "/v1/accounts", "email": CUSTOMER_EMAIL},
        request=request,
    )


@pytest.fixture
def customer() -> User:
    return customer_create(email=CUSTOMER_EMAIL, password=None)


@pytest.fixture
def event(customer) -> AuditEvent:
    return api_call(customer, request_id="req-aaaa1111", object_id="acc_1")


@pytest.fixture
def officer() -> User:
    return staff_create(email=OFFICER_EMAIL, password=None, roles=["compliance_officer"])


@pytest.fixture
def officer_client(client, officer) -> Client:
    force_login_with_mfa(client, officer)
    return client


@pytest.fixture
def viewer_client() -> Client:
    """Staff who may read the trail but not unmask it; a client of its own, next to the officer's."""
    viewer = staff_create(email="victor@fintech.example", password=None, roles=[])
    viewer.user_permissions.add(Permission.objects.get(content_type__app_label="audit", codename="view_auditevent"))
    client = Client()
    force_login_with_mfa(client, viewer)
    return client


@pytest.fixture
def superuser_client(client) -> Client:
    force_login_with_mfa(client, User.objects.create_superuser("root@fintech.example", "correct horse battery"))
    return client


# --- Masking -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "masked"),
    [
        ("alice@example.com", "a•••@e•••.com"),
        ("b@demo.fintech.example", "b•••@d•••.example"),
        ("", "••••"),
        (None, "••••"),
        ("not-an-address", "••••"),
        ("@example.com", "••••"),
        ("alice@", "••••"),
    ],
)
def test_email_masked_keeps_two_initials_and_the_top_level_domain_only(email, masked):
    assert email_masked(email) == masked


# --- Event list ------------------------------------------------------------------------


def test_event_list_shows_the_actor_masked_and_never_the_clear_email(officer_client, event):
    response = officer_client.get(EVENT_LIST_URL)
    api_calls = officer_client.get(EVENT_LIST_URL, {"event_type": "api.call"})

    assert response.status_code == 200
    content = response.content.decode()
    assert CUSTOMER_EMAIL_MASKED in content
    assert CUSTOMER_EMAIL not in content
    assert [row.id for row in api_calls.context["cl"].result_list] == [event.id]


def test_event_list_looks_up_the_actors_of_a_page_in_one_query(officer_client):
    customers = [customer_create(email=f"user{n}@example.com", password=None) for n in range(5)]
    for customer in customers:
        api_call(customer)

    with CaptureQueriesContext(connection) as queries:
        response = officer_client.get(EVENT_LIST_URL, {"event_type": "api.call"})

    assert response.status_code == 200
    user_lookups = [q["sql"] for q in queries.captured_queries if 'FROM "accounts_user"' in q["sql"]]
    # One for the logged-in user (session auth), one for every actor on the page.
    assert len(user_lookups) == 2
    content = response.content.decode()
    for n in range(5):
        assert "u•••@e•••.com" in content
        assert f"user{n}@example.com" not in content


def test_event_list_search_matches_the_request_id_exactly(officer_client, customer, event):
    other = api_call(customer, request_id="req-bbbb2222", object_id="acc_2")

    exact = officer_client.get(EVENT_LIST_URL, {"q": "req-aaaa1111"})
    by_object = officer_client.get(EVENT_LIST_URL, {"q": "acc_2"})
    by_sequence_number = officer_client.get(EVENT_LIST_URL, {"q": str(other.id)})
    prefix = officer_client.get(EVENT_LIST_URL, {"q": "req-aaaa"})

    assert [row.id for row in exact.context["cl"].result_list] == [event.id]
    assert [row.id for row in by_object.context["cl"].result_list] == [other.id]
    assert [row.id for row in by_sequence_number.context["cl"].result_list] == [other.id]
    assert list(prefix.context["cl"].result_list) == []


def test_event_list_filters_by_actor_kind(officer_client, officer, event):
    staff_event = audit_event_record(
        event_type="test.by_staff", outcome="success", actor=Actor(staff=str(officer.public_id))
    )

    users = officer_client.get(EVENT_LIST_URL, {"actor_kind": "user", "event_type__in": "api.call,test.by_staff"})
    staff = officer_client.get(EVENT_LIST_URL, {"actor_kind": "staff", "event_type__in": "api.call,test.by_staff"})

    assert [row.id for row in users.context["cl"].result_list] == [event.id]
    assert [row.id for row in staff.context["cl"].result_list] == [staff_event.id]
    assert "staff o•••@f•••.example" in staff.content.decode()


def test_staff_without_the_view_permission_cannot_see_the_trail(client, event):
    operator = staff_create(email="oscar@fintech.example", password=None, roles=["operations"])
    force_login_with_mfa(client, operator)

    assert client.get(EVENT_LIST_URL).status_code == 403
    assert client.get(change_url(event)).status_code == 403


# --- Read-only, for superusers too -------------------------------------------------------


@pytest.mark.parametrize(
    "model", [AuditEvent, AuditCheckpoint, AuditSeal, AuditSigningKey, AuditArchive, AuditVerification]
)
def test_no_audit_model_can_be_added_changed_or_deleted_even_by_a_superuser(model):
    superuser = User.objects.create_superuser("root@fintech.example", None)
    request = RequestFactory().get("/")
    request.user = superuser
    model_admin = admin.site._registry[model]

    assert model_admin.has_view_permission(request) is True
    assert model_admin.has_add_permission(request) is False
    assert model_admin.has_change_permission(request) is False
    assert model_admin.has_delete_permission(request) is False
    assert model_admin.get_actions(request) == {}


def test_superuser_gets_a_read_only_event_page_and_403_on_every_write(superuser_client, event):
    page = superuser_client.get(change_url(event))
    change = superuser_client.post(change_url(event), {"event_type": "tampered", "outcome": "failure"})
    delete = superuser_client.post(reverse("admin:audit_auditevent_delete", args=[event.pk]), {"post": "yes"})
    add = superuser_client.get(reverse("admin:audit_auditevent_add"))
    bulk_delete = superuser_client.post(
        EVENT_LIST_URL, {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"}
    )

    assert page.status_code == 200
    content = page.content.decode()
    assert 'name="_save"' not in content
    assert 'name="_continue"' not in content
    assert "deletelink" not in content
    assert change.status_code == 403
    assert delete.status_code == 403
    assert add.status_code == 403
    assert bulk_delete.status_code == 200
    assert "delete_selected" not in superuser_client.get(EVENT_LIST_URL).content.decode()
    event.refresh_from_db()
    assert (event.event_type, event.outcome) == ("api.call", "success")
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_event_page_shows_the_payload_as_pretty_json_and_the_actor_masked(officer_client, event):
    response = officer_client.get(change_url(event))

    content = response.content.decode()
    assert response.status_code == 200
    assert '<pre style="white-space: pre-wrap; margin: 0;">{\n  &quot;email&quot;: &quot;[redacted]&quot;,' in content
    assert CUSTOMER_EMAIL_MASKED in content
    assert CUSTOMER_EMAIL not in content


# --- Unmasking -------------------------------------------------------------------------------


def test_unmask_form_is_shown_only_to_holders_of_the_unmask_permission(officer_client, viewer_client, event):
    officer_page = officer_client.get(change_url(event)).content.decode()
    viewer_page = viewer_client.get(change_url(event)).content.decode()

    assert f'action="{unmask_url(event)}"' in officer_page
    assert 'id="unmask_form"' in officer_page
    assert 'id="unmask_form"' not in viewer_page


def test_unmask_without_the_permission_is_refused_and_records_nothing(viewer_client, event):
    response = viewer_client.post(unmask_url(event), {"purpose": "fraud_investigation", "reason": REASON})

    assert response.status_code == 403
    assert CUSTOMER_EMAIL not in response.content.decode()
    assert pii_reads() == []


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        ({"purpose": "fraud_investigation", "reason": ""}, "reason", "This field is required."),
        ({"purpose": "fraud_investigation", "reason": "   "}, "reason", "This field is required."),
        (
            {"purpose": "fraud_investigation", "reason": "too short"},
            "reason",
            "Ensure this value has at least 10 characters (it has 9).",
        ),
        ({"purpose": "", "reason": REASON}, "purpose", "This field is required."),
        (
            {"purpose": "curiosity", "reason": REASON},
            "purpose",
            "Select a valid choice. curiosity is not one of the available choices.",
        ),
    ],
)
def test_unmask_with_an_invalid_form_shows_the_error_and_records_nothing(officer_client, event, data, field, error):
    response = officer_client.post(unmask_url(event), data)

    assert response.status_code == 200
    assert response.context["form"].errors == {field: [error]}
    assert CUSTOMER_EMAIL not in response.content.decode()
    assert pii_reads() == []


def test_unmask_with_purpose_and_reason_shows_the_email_and_records_one_pii_read(
    officer_client, officer, customer, event
):
    response = officer_client.post(unmask_url(event), {"purpose": "fraud_investigation", "reason": REASON})

    assert response.status_code == 200
    content = response.content.decode()
    assert f'<strong id="unmasked-email">{CUSTOMER_EMAIL}</strong>' in content
    assert "no-store" in response["Cache-Control"]
    [read] = pii_reads()
    assert read.outcome == "success"
    assert (read.actor_staff, read.actor_user, read.actor_client) == (str(officer.public_id), "", "")
    assert (read.object_type, read.object_id) == ("accounts.user", str(customer.public_id))
    assert read.purpose == "fraud_investigation"
    assert read.payload == {"fields": ["email"], "reason": REASON}
    assert read.request_id == response["X-Request-ID"]
    assert f"Recorded in the audit trail as event #{read.id}" in content


def test_unmask_refuses_a_post_without_a_csrf_token(officer, event):
    client = Client(enforce_csrf_checks=True)
    force_login_with_mfa(client, officer)

    response = client.post(unmask_url(event), {"purpose": "fraud_investigation", "reason": REASON})

    assert response.status_code == 403
    assert pii_reads() == []


def test_unmask_accepts_post_only(officer_client, event):
    response = officer_client.get(unmask_url(event), {"purpose": "fraud_investigation", "reason": REASON})

    assert response.status_code == 405
    assert pii_reads() == []


def test_unmask_of_an_event_without_a_user_actor_is_not_found(officer_client, officer):
    staff_event = audit_event_record(
        event_type="test.by_staff", outcome="success", actor=Actor(staff=str(officer.public_id))
    )

    response = officer_client.post(unmask_url(staff_event), {"purpose": "fraud_investigation", "reason": REASON})

    assert response.status_code == 404
    assert pii_reads() == []


# --- Checkpoints ----------------------------------------------------------------------------------


@pytest.fixture
def sealed(customer) -> AuditCheckpoint:
    """Every event so far sealed into one checkpoint: three API calls, and whatever logging in recorded.

    Request the client fixture before this one, so its login is sealed too.
    """
    for n in range(3):
        api_call(customer, request_id=f"req-seal-{n:04d}")
    result = audit_events_seal()
    assert (result.checkpoints, result.events) == (1, AuditEvent.objects.count())
    return AuditCheckpoint.objects.get()


def test_checkpoint_list_shows_the_summary_of_the_trail(officer_client, sealed):
    before = officer_client.get(CHECKPOINT_LIST_URL)
    audit_trail_verify()
    verification = AuditVerification.objects.get()
    after = officer_client.get(CHECKPOINT_LIST_URL)

    assert before.status_code == 200
    summary = before.context["audit_summary"]
    assert summary["last_sealed_event_id"] == sealed.last_event_id == AuditEvent.objects.latest("id").id
    assert summary["latest_checkpoint"] == sealed
    assert summary["latest_verification"] is None
    content = before.content.decode()
    assert f'<td id="summary-last-sealed">{sealed.last_event_id}</td>' in content
    assert f"<code>{sealed.merkle_root}</code>" in content
    assert "no verification has run yet" in content
    assert f"{sealed.merkle_root[:12]}…" in content  # the list shows the root truncated
    assert 'value="Verify now"' in content
    assert after.context["audit_summary"]["latest_verification"] == verification
    assert "<strong>passed</strong>" in after.content.decode()


def test_checkpoint_page_shows_the_full_root(officer_client, sealed):
    response = officer_client.get(reverse("admin:audit_auditcheckpoint_change", args=[sealed.pk]))

    assert response.status_code == 200
    assert sealed.merkle_root in response.content.decode()
    assert 'name="_save"' not in response.content.decode()


def test_verify_now_records_a_verification_and_reports_it(officer_client, sealed):
    response = officer_client.post(VERIFY_URL, follow=True)

    assert response.redirect_chain == [(CHECKPOINT_LIST_URL, 302)]
    verification = AuditVerification.objects.get()
    assert verification.passed is True
    assert verification.checkpoints_checked == 1
    assert verification.events_checked == sealed.event_count
    assert verification.first_bad_event_id is None
    assert [str(message) for message in response.context["messages"]] == [
        f"Verification passed: 1 checkpoints and {sealed.event_count} events checked."
    ]
    assert response.context["audit_summary"]["latest_verification"] == verification


def test_verify_now_in_a_web_process_hands_the_run_to_the_sealer(officer_client, sealed, settings, monkeypatch):
    """Issue 12: only the sealer's login may record a result, so the web queues the run instead of recording it."""
    from audit import tasks

    queued = []
    monkeypatch.setattr(tasks.verify_trail, "delay", lambda: queued.append(True))
    settings.AUDIT_SEALER_PROCESS = False

    response = officer_client.post(VERIFY_URL, follow=True)

    assert response.redirect_chain == [(CHECKPOINT_LIST_URL, 302)]
    assert queued == [True]
    assert AuditVerification.objects.count() == 0
    assert [str(message) for message in response.context["messages"]] == [
        "Verification queued: its result appears here when the sealer has finished it."
    ]
    requested = AuditEvent.objects.get(event_type="audit.verification_requested")  # who asked is on record
    assert requested.actor_staff == str(response.wsgi_request.user.public_id)


def test_verify_now_needs_the_checkpoint_view_permission(viewer_client, sealed):
    response = viewer_client.post(VERIFY_URL)

    assert response.status_code == 403
    assert AuditVerification.objects.count() == 0


def test_verify_now_accepts_post_only(officer_client, sealed):
    assert officer_client.get(VERIFY_URL).status_code == 405
    assert AuditVerification.objects.count() == 0


def test_a_passed_result_inserted_with_the_database_login_is_shown_as_forged(officer_client, sealed):
    """Issue 12: a fake "passed" row must not replace a failed one on the checkpoint page."""
    from audit.services.verification import verification_authentic

    genuine = audit_trail_verify()
    real = AuditVerification.objects.get()
    forged = AuditVerification.objects.create(  # what INSERT with the runtime role's login can do
        passed=True, checkpoints_checked=999, events_checked=999, detail="", result_mac="0" * 64
    )

    page = officer_client.get(CHECKPOINT_LIST_URL).content.decode()

    assert genuine.passed and verification_authentic(real) and not verification_authentic(forged)
    assert "999 checkpoints" not in page and f"{real.checkpoints_checked} checkpoints" in page
    assert 'id="forged-verifications"' in page and "fail their signature" in page
