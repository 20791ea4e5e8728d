"""Commands that change state name an authenticated staff member (issue 11 item 6), against PostgreSQL and Redis.

The command under test is `partner_api_key_revoke`: its effect (a revoked key,
an `api_key.revoked` event) is easy to see, and so is its absence.
"""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command, load_command_class
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice
from oauth2_provider.models import Application

from accounts.api_keys.services import partner_api_key_issue
from accounts.models import PartnerApiKey, User
from accounts.services import customer_create, staff_create
from accounts.tests.operator_helpers import (
    OPERATOR_PASSWORD,
    operator_create,
    operator_device,
    operator_stdin,
    totp_code_now,
)
from audit.models import AuditEvent
from audit.services.events import Actor
from fintech import operators
from fintech.operators import OPERATOR_CREDENTIALS_HELP, OPERATOR_REFUSED_MESSAGE, OperatorCommandMixin

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("isolated_throttle")]

REVOKE = "partner_api_key_revoke"
SETUP = Actor.system("test-setup")
# Every command that changes state (or shows a secret), app by app; tokenvault's run in the vault role,
# which cannot read users, and ledger_deposit is converted with the four-eyes work.
OPERATOR_COMMANDS = [
    ("accounts", "partner_api_key_issue"),
    ("accounts", "partner_api_key_revoke"),
    ("accounts", "partner_webhook_secret"),
    ("audit", "audit_export"),
    ("audit", "audit_purge"),
]


@pytest.fixture
def api_key() -> PartnerApiKey:
    application = Application.objects.create(
        name="Partner",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret="partner-secret-0123456789-abcdefghijklmnopqrstuvwxyz",
        hash_client_secret=True,
    )
    key, _raw = partner_api_key_issue(
        application=application, name="payouts", scopes="accounts:read", expires_in_days=30, actor=SETUP
    )
    return key


def revoke(api_key: PartnerApiKey, stdin: io.StringIO | None, *, stdout=None, stderr=None) -> None:
    options = {"stdin": stdin} if stdin is not None else {}
    call_command(
        REVOKE, api_key.prefix, "--reason", "INC-7 offboarded",
        stdout=stdout or io.StringIO(), stderr=stderr or io.StringIO(), **options,
    )  # fmt: skip


def typed(email: str, password: str, code: str) -> io.StringIO:
    return io.StringIO(f"{email}\n{password}\n{code}\n")


def refused(api_key: PartnerApiKey, stdin: io.StringIO | None) -> str:
    with pytest.raises(CommandError) as raised:
        revoke(api_key, stdin)
    assert PartnerApiKey.objects.get(pk=api_key.pk).revoked_at is None
    assert not AuditEvent.objects.filter(event_type="api_key.revoked", object_id=api_key.prefix).exists()
    return str(raised.value)


def failures() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type="auth.operator_failed").order_by("id"))


def wrong_code(device: TOTPDevice) -> str:
    accepted = {totp_code_now(device, steps_from_now=offset) for offset in (-2, -1, 0, 1, 2)}
    return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in accepted)


# --- refusals ------------------------------------------------------------------------------------


def test_no_credentials_are_refused_and_nothing_changes(api_key):
    assert refused(api_key, io.StringIO("")) == OPERATOR_REFUSED_MESSAGE
    assert refused(api_key, None) == OPERATOR_REFUSED_MESSAGE  # pytest's stdin cannot be read: nothing typed

    assert [(e.payload, e.outcome, e.actor_staff) for e in failures()] == [
        ({"command": REVOKE, "reason": "incomplete"}, "failure", ""),
    ] * 2


def test_a_wrong_password_is_refused_and_counted_by_the_web_logins_throttle(api_key, settings):
    operator = operator_create(roles=["security_admin"])
    device = operator_device(operator)

    for _ in range(5):  # LOGIN_ATTEMPTS_PER_ACCOUNT is 5 per 15 minutes (isolated_throttle)
        assert refused(api_key, typed(operator.email, "not the password", totp_code_now(device))) == (
            OPERATOR_REFUSED_MESSAGE
        )

    # Locked: the right credentials are not even checked now, here or on the web login.
    assert "too many failed sign-in attempts" in refused(api_key, operator_stdin(operator))
    web = Client().post("/accounts/login/", {"username": operator.email, "password": OPERATOR_PASSWORD})
    assert web.status_code == 429
    assert [e.payload["reason"] for e in failures()] == ["password"] * 5 + ["locked_out"]
    assert failures()[0].object_id == str(operator.public_id)  # the account by public id, never the email
    assert not AuditEvent.objects.filter(event_type__in=["auth.mfa_verified", "auth.mfa_failed"]).exists()


def test_a_customer_is_refused_even_with_the_right_password_and_code(api_key):
    customer = customer_create(email="customer@example.com", password=OPERATOR_PASSWORD)

    assert refused(api_key, operator_stdin(customer)) == OPERATOR_REFUSED_MESSAGE
    assert failures()[-1].payload["reason"] == "not_staff"


def test_staff_without_an_authenticator_are_refused(api_key):
    staff = staff_create(email="no-mfa@example.com", password=OPERATOR_PASSWORD, roles=[])
    TOTPDevice.objects.create(user=staff, name="never confirmed", confirmed=False)
    device = TOTPDevice.objects.get(user=staff)

    assert refused(api_key, typed(staff.email, OPERATOR_PASSWORD, totp_code_now(device))) == OPERATOR_REFUSED_MESSAGE
    assert failures()[-1].payload["reason"] == "no_mfa"


def test_an_inactive_staff_member_is_refused(api_key):
    operator = operator_create(roles=["security_admin"])
    User.objects.filter(pk=operator.pk).update(is_active=False)

    assert refused(api_key, operator_stdin(operator)) == OPERATOR_REFUSED_MESSAGE


def test_a_wrong_code_is_refused_and_recorded_as_a_failed_second_factor(api_key, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # only the login throttle, not the device's own back-off
    operator = operator_create(roles=["security_admin"])

    assert refused(api_key, typed(operator.email, OPERATOR_PASSWORD, wrong_code(operator_device(operator)))) == (
        OPERATOR_REFUSED_MESSAGE
    )
    assert failures()[-1].payload["reason"] == "code"
    assert AuditEvent.objects.get(event_type="auth.mfa_failed").actor_staff == str(operator.public_id)


def test_a_code_is_accepted_once_a_replay_is_refused(api_key, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    operator = operator_create(roles=["security_admin"])
    stdin = operator_stdin(operator)
    replay = stdin.getvalue()
    other_key = partner_api_key_issue(
        application=api_key.application, name="other", scopes="accounts:read", expires_in_days=30, actor=SETUP
    )[0]

    revoke(other_key, stdin)

    assert PartnerApiKey.objects.get(pk=other_key.pk).revoked_at is not None
    assert refused(api_key, io.StringIO(replay)) == OPERATOR_REFUSED_MESSAGE
    assert failures()[-1].payload["reason"] == "code"


def test_without_a_registered_authenticator_every_operator_command_is_refused(api_key, monkeypatch):
    monkeypatch.setattr(operators, "_authenticator", None)

    assert "not available" in refused(api_key, operator_stdin(operator_create(roles=["security_admin"])))


# --- where credentials come from ---------------------------------------------------------------


def test_arguments_and_environment_variables_are_never_read(api_key, monkeypatch):
    operator = operator_create(roles=["security_admin"])
    code = totp_code_now(operator_device(operator))
    for name, value in {
        "OPERATOR_EMAIL": operator.email,
        "OPERATOR_PASSWORD": OPERATOR_PASSWORD,
        "OPERATOR_CODE": code,
        "OPERATOR_TOTP": code,
        "DJANGO_OPERATOR_PASSWORD": OPERATOR_PASSWORD,
    }.items():
        monkeypatch.setenv(name, value)

    assert refused(api_key, io.StringIO("")) == OPERATOR_REFUSED_MESSAGE
    for option in ("--password", "--email", "--code"):
        with pytest.raises(CommandError, match="unrecognized arguments"):
            call_command(REVOKE, api_key.prefix, "--reason", "x", option, "value", stdin=io.StringIO(""))
    assert PartnerApiKey.objects.get(pk=api_key.pk).revoked_at is None


def test_on_a_terminal_the_secrets_are_read_without_echo_and_prompts_stay_off_stdout(api_key, monkeypatch):
    operator = operator_create(roles=["security_admin"])
    code = totp_code_now(operator_device(operator))
    answers = iter([OPERATOR_PASSWORD, code])
    prompts: list[str] = []

    def getpass(prompt: str = "Password: ", stream=None) -> str:
        prompts.append(prompt)
        return next(answers)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(operators.getpass, "getpass", getpass)
    stdout, stderr = io.StringIO(), io.StringIO()

    revoke(api_key, Terminal(f"{operator.email}\n"), stdout=stdout, stderr=stderr)

    assert prompts == ["Password: ", "Authenticator code: "]
    assert "Operator email: " in stderr.getvalue()
    assert stdout.getvalue().startswith(f"revoked {api_key.prefix}")
    assert PartnerApiKey.objects.get(pk=api_key.pk).revoked_at is not None


# --- success -------------------------------------------------------------------------------------


def test_success_names_the_staff_member_as_the_actor_of_the_effect(api_key):
    operator = operator_create(roles=["security_admin"])
    stdin = operator_stdin(operator)
    password, code = stdin.getvalue().splitlines()[1:]
    stdout, stderr = io.StringIO(), io.StringIO()
    before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()

    revoke(api_key, stdin, stdout=stdout, stderr=stderr)

    revoked = AuditEvent.objects.get(event_type="api_key.revoked")
    assert (revoked.actor_staff, revoked.actor_client, revoked.actor_user) == (str(operator.public_id), "", "")
    authenticated = AuditEvent.objects.get(event_type="auth.operator_authenticated")
    assert (authenticated.actor_staff, authenticated.object_id, authenticated.payload) == (
        str(operator.public_id),
        str(operator.public_id),
        {"command": REVOKE},
    )
    assert AuditEvent.objects.get(event_type="auth.mfa_verified").actor_staff == str(operator.public_id)
    assert not AuditEvent.objects.filter(id__gt=before, actor_client__startswith="system:").exists()
    printed = stdout.getvalue() + stderr.getvalue()
    recorded = json.dumps([event.payload for event in AuditEvent.objects.all()])
    for secret in (password, code):
        assert secret not in printed
        assert secret not in recorded


@pytest.mark.parametrize(("app", "name"), OPERATOR_COMMANDS)
def test_every_command_that_changes_state_authenticates_its_operator_and_says_so(app, name):
    command = load_command_class(app, name)

    assert isinstance(command, OperatorCommandMixin)
    assert OPERATOR_CREDENTIALS_HELP in command.help


def test_every_operator_command_names_a_permission_that_exists():
    """A command that authenticates its operator also says what they must hold; a typo would refuse everyone."""
    from django.contrib.auth.models import Permission
    from django.core.management import get_commands, load_command_class

    from fintech.operators import OperatorCommandMixin

    found = {}
    for name, app in get_commands().items():
        command = load_command_class(app, name)
        if isinstance(command, OperatorCommandMixin):
            found[name] = command.operator_permission
            help_text = " ".join(command.create_parser("manage.py", name).format_help().split())
            assert f"needs the permission {command.operator_permission}" in help_text, name
    assert {"ledger_deposit", "partner_api_key_issue", "audit_purge"} <= set(found)
    for name, permission in found.items():
        app_label, _, codename = permission.partition(".")
        assert Permission.objects.filter(content_type__app_label=app_label, codename=codename).exists(), name


def test_an_authenticated_operator_without_the_commands_permission_is_refused(api_key):
    operator = operator_create(roles=["operations"])  # authenticated, but may not revoke partner keys
    message = refused(api_key, operator_stdin(operator))
    assert "does not hold accounts.revoke_partnerapikey" in message
    api_key.refresh_from_db()
    assert api_key.revoked_at is None
