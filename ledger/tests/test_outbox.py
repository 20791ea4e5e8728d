"""The transactional outbox: rows commit with the transfer, each is delivered once, failures retry, then fail.

Real PostgreSQL, real Redis, real worker processes. Tests that start a worker
give it a Redis of its own as broker (`private_broker`), so delivery requests
never mix with other test runs sharing the developer's Redis, and its emails
go to files in a temporary directory (`outbox_worker`).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path

import pytest
import redis as redis_lib
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.mail.backends.locmem import EmailBackend as LocmemEmailBackend
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.db.models.functions import Now

from accounts.models import OAuthClientPolicy
from accounts.oauth.clients import oauth_client_register_partner
from accounts.tests.operator_helpers import operator_create, operator_stdin
from audit.models import AuditEvent
from conftest import ROOT, stop_process, subprocess_env, wait_until
from ledger.exceptions import InsufficientFunds
from ledger.models import OUTBOX_MAX_ATTEMPTS, OutboxMessage, Transfer
from ledger.outbox import services as outbox_services
from ledger.outbox.delivery import (
    Outcome,
    error_summary,
    outbox_dispatch_due,
    outbox_message_deliver,
    retry_delay_seconds,
)
from ledger.outbox.webhooks import WebhookRefused, webhook_url_check
from ledger.services import deposit_from_funding, transfer_create
from ledger.tasks import dispatch_outbox
from ledger.tests.factories import TEST_ACTOR, account, customer, generous_limits

WEBHOOK_SIGNING_KEY = "test-webhook-signing-key-0123456789abcdefghijklmnop"
DEAD_BROKER_URL = "redis://127.0.0.1:1/0"
MAIL_SEPARATOR = b"\n" + b"-" * 79 + b"\n"  # what Django's file-based backend writes after each message


@pytest.fixture(autouse=True)
def _webhook_settings(settings):
    # Until the settings modules define them (dev/test: generated key, loopback allowed).
    settings.WEBHOOK_SIGNING_KEY = WEBHOOK_SIGNING_KEY
    settings.WEBHOOK_ALLOW_LOOPBACK_HTTP = True


# --- Helpers -----------------------------------------------------------------------------


def post_transfer(source, destination, amount_minor: int, *, client_id: str = "mobile-app") -> Transfer:
    return transfer_create(
        from_public_id=source.public_id,
        to_public_id=destination.public_id,
        amount_minor=amount_minor,
        currency=source.currency,
        reference="rent",
        initiated_by=source.owner,
        client_id=client_id,
        actor=TEST_ACTOR,
    )


def messages_of(transfer: Transfer):
    return OutboxMessage.objects.filter(payload__transfer=str(transfer.public_id)).order_by("id")


def read_mailbox(directory: Path) -> list[Message]:
    """Every message the file-based backend wrote (it may append several to one file)."""
    messages = []
    for path in sorted(directory.glob("*.log")):
        for chunk in path.read_bytes().split(MAIL_SEPARATOR):
            if chunk.strip():
                messages.append(message_from_bytes(chunk))
    return messages


def mail_body(message: Message) -> str:
    return message.get_payload(decode=True).decode()


def partner_with_webhook(url: str) -> str:
    application, _secret = oauth_client_register_partner(name="payroll partner", can_introspect=False, actor=TEST_ACTOR)
    OAuthClientPolicy.objects.filter(application=application).update(webhook_url=url)
    return application.client_id


def make_due(message: OutboxMessage) -> None:
    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=Now() - timedelta(seconds=1))


# --- Broker and worker fixtures ------------------------------------------------------------


def _point_producer_at(url: str) -> None:
    """Make `.delay()` in this process publish to `url`.

    Celery reads the broker URL when it first builds its connection and
    producer pools and then keeps them; changing the setting alone would not
    move an already-connected app, so the app's references to them are dropped too.
    """
    from fintech.celery import app

    app.conf.broker_url = url
    app._pool = None  # not closed: kombu shares pools per URL, and this one is wanted again later
    app.amqp._producer_pool = None


@pytest.fixture
def private_broker(redis_server, settings, monkeypatch):
    """A redis-server of this test's own as broker, and delivery requests on commit turned on."""
    from fintech.celery import app

    previous = app.conf.broker_url
    settings.CELERY_BROKER_URL = redis_server.url
    settings.OUTBOX_DELIVERY_ON_COMMIT = True
    with monkeypatch.context() as patch:
        patch.setenv("CELERY_BROKER_URL", redis_server.url)  # Celery prefers it to its conf; workers inherit it
        _point_producer_at(redis_server.url)
        yield redis_server
    _point_producer_at(previous)


@contextlib.contextmanager
def broker_down(monkeypatch):
    """Publishing fails as it does when Redis is unreachable: nothing listens on port 1."""
    from fintech.celery import app

    previous = app.conf.broker_url
    with monkeypatch.context() as patch:
        patch.setenv("CELERY_BROKER_URL", DEAD_BROKER_URL)
        _point_producer_at(DEAD_BROKER_URL)
        try:
            yield
        finally:
            patch.undo()
            _point_producer_at(previous)


def queued_requests(broker) -> int:
    from django.conf import settings

    return redis_lib.Redis.from_url(broker.url).llen(settings.CELERY_TASK_DEFAULT_QUEUE)


class OutboxWorker:
    """A real `celery worker` on the private broker, sending email into files under `mail_dir`."""

    def __init__(self, *, broker_url: str, queue: str, mail_dir: Path, log_path: Path) -> None:
        self.broker_url = broker_url
        self.queue = queue
        self.mail_dir = mail_dir
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.log = None

    def start(self) -> None:
        env = {
            **subprocess_env(),
            "CELERY_BROKER_URL": self.broker_url,
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(self.mail_dir),
        }
        command = [sys.executable, "-m", "celery", "--app", "fintech", "worker", "--queues", self.queue]
        command += ["--concurrency", "1", "--pool", "solo", "--without-gossip", "--without-mingle"]
        command += ["--without-heartbeat", "--loglevel", "WARNING"]
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=self.log)

    def stop(self) -> None:
        if self.process is None:
            return
        stop_process(self.process)
        self.process = None
        self.log.close()


@pytest.fixture
def outbox_worker(private_broker, settings, tmp_path, django_db_setup):
    """Not started: the test starts it when it wants deliveries to begin."""
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    worker = OutboxWorker(
        broker_url=private_broker.url,
        queue=settings.CELERY_TASK_DEFAULT_QUEUE,
        mail_dir=mail_dir,
        log_path=tmp_path / "worker.log",
    )
    yield worker
    worker.stop()


# --- Writing the rows: in the transfer's transaction -----------------------------------------


@pytest.mark.django_db
def test_a_transfer_owes_one_email_to_the_payer_and_one_to_the_payee():
    generous_limits()
    alice, bob = account(balance_minor=100_00), account()

    transfer = post_transfer(alice, bob, 12_34)

    rows = list(messages_of(transfer).values_list("topic", "channel", "recipient_user_id", "status", "attempts"))
    expected_users = sorted([alice.owner_id, bob.owner_id])
    assert rows == [
        ("transfer.posted", "email", expected_users[0], "pending", 0),
        ("transfer.posted", "email", expected_users[1], "pending", 0),
    ]
    common = {
        "transfer": str(transfer.public_id),
        "kind": "transfer",
        "amount": "12.34",
        "amount_minor": "1234",
        "currency": "EUR",
    }
    payloads = {message.recipient_user_id: message.payload for message in messages_of(transfer)}
    assert payloads == {
        alice.owner_id: {**common, "direction": "debit"},
        bob.owner_id: {**common, "direction": "credit"},
    }
    stored = json.dumps(list(messages_of(transfer).values("payload", "recipient_client_id", "last_error")))
    assert alice.owner.email not in stored
    assert bob.owner.email not in stored
    assert "rent" not in stored  # the reference is free text: read from the transfer at delivery time


@pytest.mark.django_db
def test_platform_accounts_get_no_email_and_a_customer_on_both_sides_gets_one():
    owner = customer()
    checking = account(owner=owner)
    savings = account(owner=owner)

    deposit = deposit_from_funding(account=checking, amount_minor=50_00, reason="top-up", actor=TEST_ACTOR)
    generous_limits()
    internal = post_transfer(checking, savings, 10_00)

    assert list(messages_of(deposit).values_list("recipient_user_id", "payload__direction")) == [(owner.pk, "credit")]
    assert list(messages_of(internal).values_list("recipient_user_id", "payload__direction")) == [
        (owner.pk, "internal")
    ]


@pytest.mark.django_db
def test_a_transfer_through_a_client_with_a_webhook_url_also_owes_it_a_webhook():
    generous_limits()
    alice, bob = account(balance_minor=100_00), account()
    client_id = partner_with_webhook("https://partner.example/hooks/fintech")
    silent_client_id = partner_with_webhook("")

    with_hook = post_transfer(alice, bob, 1_00, client_id=client_id)
    without_hook = post_transfer(alice, bob, 1_00, client_id=silent_client_id)

    assert list(messages_of(with_hook).values_list("channel", "recipient_client_id", "recipient_user_id")) == [
        ("email", "", min(alice.owner_id, bob.owner_id)),
        ("email", "", max(alice.owner_id, bob.owner_id)),
        ("webhook", client_id, None),
    ]
    assert list(messages_of(without_hook).values_list("channel", flat=True)) == ["email", "email"]


@pytest.mark.django_db
def test_a_refused_transfer_leaves_no_outbox_row():
    generous_limits()
    alice, bob = account(balance_minor=1_00), account()
    before = OutboxMessage.objects.count()

    with pytest.raises(InsufficientFunds):
        post_transfer(alice, bob, 2_00)

    assert OutboxMessage.objects.count() == before


@pytest.mark.django_db(transaction=True)
def test_a_transfer_rolled_back_after_the_hook_leaves_no_row_and_requests_no_delivery(settings, monkeypatch):
    generous_limits()
    alice, bob = account(balance_minor=100_00), account()
    settings.OUTBOX_DELIVERY_ON_COMMIT = True
    requested = []
    monkeypatch.setattr(outbox_services, "outbox_delivery_request", requested.append)
    before = OutboxMessage.objects.count()

    with pytest.raises(RuntimeError, match="after the transfer"), transaction.atomic():
        post_transfer(alice, bob, 5_00)
        assert OutboxMessage.objects.count() == before + 2  # written, inside the transaction
        raise RuntimeError("something failed after the transfer, in the same transaction")

    assert OutboxMessage.objects.count() == before
    assert Transfer.objects.filter(kind="transfer").count() == 0
    assert requested == []


# --- The acceptance test: no worker, commit, then a real worker delivers each message once --------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_messages_committed_without_a_worker_are_delivered_once_when_one_starts(outbox_worker, private_broker):
    generous_limits()
    alice, bob = account(owner=customer(), balance_minor=100_00), account(owner=customer())

    transfer = post_transfer(alice, bob, 12_34)

    # Given: committed with the transfer, pending, delivery requested (the deposit's, and both of the transfer's).
    assert list(messages_of(transfer).values_list("status", flat=True)) == ["pending", "pending"]
    assert queued_requests(private_broker) == 3
    assert OutboxMessage.objects.filter(channel="email").count() == 3

    # When: a worker starts.
    outbox_worker.start()
    wait_until(
        lambda: not OutboxMessage.objects.filter(status="pending").exists(), timeout_seconds=30, interval_seconds=0.2
    )

    # Then: every message delivered, exactly one email per message, one per recipient of the transfer.
    assert set(OutboxMessage.objects.values_list("status", "attempts")) == {("delivered", 1)}
    emails = read_mailbox(outbox_worker.mail_dir)
    assert len(emails) == 3
    about_transfer = [email for email in emails if str(transfer.public_id) in mail_body(email)]
    assert Counter(email["To"] for email in about_transfer) == {alice.owner.email: 1, bob.owner.email: 1}
    for email in about_transfer:
        assert email["Subject"] == "Transfer of 12.34 EUR posted"
        assert "Reference: rent" in mail_body(email)
        assert str(alice.public_id) not in mail_body(email)
        assert str(bob.public_id) not in mail_body(email)
    files_before = sorted(path.name for path in outbox_worker.mail_dir.iterdir())

    # And the sweeper, afterwards, finds nothing to send (here, and through the worker).
    assert outbox_dispatch_due() == Counter()
    assert [outbox_message_deliver(message_id=pk) for pk in messages_of(transfer).values_list("pk", flat=True)] == [
        Outcome.SKIPPED,
        Outcome.SKIPPED,
    ]
    dispatch_outbox.delay()
    wait_until(lambda: queued_requests(private_broker) == 0, timeout_seconds=15)
    time.sleep(0.5)  # the worker has taken the sweep; give it time to (not) write anything
    assert mail.outbox == []
    assert sorted(path.name for path in outbox_worker.mail_dir.iterdir()) == files_before
    assert len(read_mailbox(outbox_worker.mail_dir)) == 3


# --- Broker down at commit: the transfer commits, the sweeper delivers later ----------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_broker_outage_at_commit_loses_nothing_and_the_sweeper_delivers_once(
    outbox_worker, private_broker, monkeypatch, caplog
):
    generous_limits()
    alice, bob = account(owner=customer(), balance_minor=100_00), account(owner=customer())
    assert queued_requests(private_broker) == 1  # the funding deposit's email

    with broker_down(monkeypatch), caplog.at_level("WARNING", logger="ledger.outbox.services"):
        started = time.monotonic()
        transfer = post_transfer(alice, bob, 7_00)
        elapsed_seconds = time.monotonic() - started

    # The transfer committed and returned promptly; its messages are pending with no request queued.
    assert Transfer.objects.filter(pk=transfer.pk).exists()
    assert elapsed_seconds < 5
    assert list(messages_of(transfer).values_list("status", flat=True)) == ["pending", "pending"]
    assert queued_requests(private_broker) == 1
    assert "broker unavailable" in caplog.text

    # The broker is back: a worker runs the sweeper (`ledger.dispatch_outbox`, as beat would send it).
    outbox_worker.start()
    dispatch_outbox.delay()
    wait_until(
        lambda: not OutboxMessage.objects.filter(status="pending").exists(), timeout_seconds=30, interval_seconds=0.2
    )

    assert set(messages_of(transfer).values_list("status", "attempts")) == {("delivered", 1)}
    emails = [email for email in read_mailbox(outbox_worker.mail_dir) if str(transfer.public_id) in mail_body(email)]
    assert Counter(email["To"] for email in emails) == {alice.owner.email: 1, bob.owner.email: 1}
    assert len(read_mailbox(outbox_worker.mail_dir)) == 3


# --- The row lock: many deliverers, one send ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_eight_threads_delivering_one_message_send_it_once(monkeypatch):
    alice = account(balance_minor=10_00)
    message = OutboxMessage.objects.get(recipient_user=alice.owner)
    original_send = LocmemEmailBackend.send_messages

    def slow_send(self, messages):
        time.sleep(0.3)  # hold the row lock long enough for every other thread to arrive
        return original_send(self, messages)

    monkeypatch.setattr(LocmemEmailBackend, "send_messages", slow_send)
    mail.outbox.clear()
    barrier = threading.Barrier(8)
    outcomes: list[Outcome] = []

    def deliver() -> None:
        try:
            barrier.wait(timeout=10)
            outcomes.append(outbox_message_deliver(message_id=message.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, daemon=True) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert Counter(outcomes) == {Outcome.DELIVERED: 1, Outcome.SKIPPED: 7}
    assert [email.to for email in mail.outbox] == [[alice.owner.email]]
    message.refresh_from_db()
    assert (message.status, message.attempts, message.last_error) == ("delivered", 1, "")
    assert message.delivered_at is not None


# --- Webhooks: signed, retried with backoff, failed after the last attempt ----------------------------


class WebhookReceiver:
    """A partner's endpoint on loopback: records each request and answers with `status`."""

    def __init__(self) -> None:
        self.status = 204
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append((self.path, dict(self.headers.items()), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/fintech"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook_receiver():
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


def webhook_message_for(url: str, amount_minor: int = 12_34) -> tuple[OutboxMessage, Transfer, str]:
    generous_limits()
    alice, bob = account(balance_minor=100_00), account()
    client_id = partner_with_webhook(url)
    transfer = post_transfer(alice, bob, amount_minor, client_id=client_id)
    return messages_of(transfer).get(channel="webhook"), transfer, client_id


@pytest.mark.django_db
def test_a_webhook_is_posted_signed_with_the_secret_derived_for_the_client(webhook_receiver):
    message, transfer, client_id = webhook_message_for(webhook_receiver.url)

    outcome = outbox_message_deliver(message_id=message.pk)

    assert outcome == Outcome.DELIVERED
    [(path, headers, body)] = webhook_receiver.requests
    assert path == "/hooks/fintech"
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Fintech-Event"] == "transfer.posted"
    assert headers["X-Fintech-Delivery"] == str(message.public_id)
    assert abs(int(headers["X-Fintech-Timestamp"]) - time.time()) < 60
    # What the partner does: derive nothing, just use the secret it was given.
    partner_secret = hmac.new(WEBHOOK_SIGNING_KEY.encode(), client_id.encode(), hashlib.sha256).hexdigest()
    signed = headers["X-Fintech-Timestamp"].encode() + b"." + body
    expected = "sha256=" + hmac.new(partner_secret.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Fintech-Signature"], expected)
    assert json.loads(body) == {
        "id": str(message.public_id),
        "type": "transfer.posted",
        "data": {
            "transfer": str(transfer.public_id),
            "kind": "transfer",
            "amount": "12.34",
            "amount_minor": "1234",
            "currency": "EUR",
            "reference": "rent",
            "posted_at": transfer.created_at.isoformat(),
        },
    }
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("delivered", 1)
    assert outbox_message_deliver(message_id=message.pk) == Outcome.SKIPPED
    assert len(webhook_receiver.requests) == 1


@pytest.mark.django_db
def test_a_failing_webhook_is_retried_with_backoff_then_fails_with_an_audit_event(webhook_receiver):
    message, _transfer, _client_id = webhook_message_for(webhook_receiver.url)
    webhook_receiver.status = 500

    # First attempt: 500 -> a retry 15-30 s later (30 s with jitter), still pending.
    assert outbox_message_deliver(message_id=message.pk) == Outcome.RETRY_SCHEDULED
    message.refresh_from_db()
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s - clock_timestamp()", [message.next_attempt_at])
        delay = cursor.fetchone()[0]
    assert (message.status, message.attempts, message.last_error) == ("pending", 1, "WebhookFailed: HTTP 500")
    assert timedelta(seconds=14) <= delay <= timedelta(seconds=30)
    # Not due yet: neither the task nor the sweeper sends it again (the sweeper sends the three emails).
    assert outbox_message_deliver(message_id=message.pk) == Outcome.SKIPPED
    assert outbox_dispatch_due() == Counter({Outcome.DELIVERED: 3})
    assert len(webhook_receiver.requests) == 1

    # Every later attempt fails too, until the last one.
    outcomes = []
    for _ in range(OUTBOX_MAX_ATTEMPTS - 1):
        make_due(message)
        outcomes.append(outbox_message_deliver(message_id=message.pk))

    assert outcomes == [Outcome.RETRY_SCHEDULED] * (OUTBOX_MAX_ATTEMPTS - 2) + [Outcome.FAILED]
    message.refresh_from_db()
    assert (message.status, message.attempts, message.delivered_at) == ("failed", OUTBOX_MAX_ATTEMPTS, None)
    assert len(webhook_receiver.requests) == OUTBOX_MAX_ATTEMPTS
    assert {headers["X-Fintech-Delivery"] for _, headers, _ in webhook_receiver.requests} == {str(message.public_id)}
    event = AuditEvent.objects.get(event_type="notification.failed")
    assert (event.outcome, event.actor_client, event.object_type, event.object_id) == (
        "failure",
        "system:ledger.outbox",
        "ledger.outbox_message",
        str(message.public_id),
    )
    assert event.payload == {
        "topic": "transfer.posted",
        "channel": "webhook",
        "transfer": message.payload["transfer"],
        "attempts": OUTBOX_MAX_ATTEMPTS,
        "last_error": "WebhookFailed: HTTP 500",
    }
    make_due(message)
    assert outbox_message_deliver(message_id=message.pk) == Outcome.SKIPPED  # failed is final


@pytest.mark.django_db
def test_a_webhook_receiver_that_redirects_or_does_not_answer_is_a_failed_attempt(webhook_receiver):
    message, _transfer, _client_id = webhook_message_for(webhook_receiver.url)
    webhook_receiver.status = 302

    assert outbox_message_deliver(message_id=message.pk) == Outcome.RETRY_SCHEDULED
    webhook_receiver.close()
    make_due(message)
    assert outbox_message_deliver(message_id=message.pk) == Outcome.RETRY_SCHEDULED

    message.refresh_from_db()
    assert (message.status, message.attempts, message.last_error) == ("pending", 2, "WebhookFailed: ConnectionError")
    assert webhook_receiver.url not in message.last_error


@pytest.mark.django_db
def test_loopback_http_is_refused_at_delivery_where_not_allowed(webhook_receiver, settings):
    message, _transfer, _client_id = webhook_message_for(webhook_receiver.url)
    settings.WEBHOOK_ALLOW_LOOPBACK_HTTP = False

    assert outbox_message_deliver(message_id=message.pk) == Outcome.FAILED

    assert webhook_receiver.requests == []
    message.refresh_from_db()
    assert (message.status, message.attempts, message.last_error) == (
        "failed",
        1,
        "WebhookRefused: webhook URL is not https",
    )
    assert AuditEvent.objects.filter(event_type="notification.failed", object_id=str(message.public_id)).exists()


# --- Webhook URLs, secrets, backoff, error text -------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "http://partner.example/hooks",
        "ftp://partner.example/hooks",
        "https://user:password@partner.example/hooks",
        "https://partner.example/hooks#fragment",
        "http://10.0.0.1/hooks",
    ],
)
def test_a_webhook_url_that_is_not_https_is_refused_on_save(url):
    application, _secret = oauth_client_register_partner(name="partner", can_introspect=False, actor=TEST_ACTOR)
    policy = OAuthClientPolicy.objects.get(application=application)
    policy.webhook_url = url

    with pytest.raises(ValidationError):
        policy.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        policy.save()

    assert OAuthClientPolicy.objects.get(pk=policy.pk).webhook_url == ""


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    ["https://partner.example/hooks/fintech?v=1", "https://hooks.partner.example:8443", "http://127.0.0.1:8080/h"],
)
def test_https_and_loopback_webhook_urls_are_accepted_on_save(url):
    application, _secret = oauth_client_register_partner(name="partner", can_introspect=False, actor=TEST_ACTOR)
    policy = OAuthClientPolicy.objects.get(application=application)
    policy.webhook_url = url

    policy.full_clean()
    policy.save()

    assert OAuthClientPolicy.objects.get(pk=policy.pk).webhook_url == url


def test_the_sender_refuses_plain_http_beyond_loopback_and_loopback_unless_allowed(settings):
    webhook_url_check("https://partner.example/hooks")
    webhook_url_check("http://127.0.0.1:9000/hooks")
    with pytest.raises(WebhookRefused):
        webhook_url_check("http://partner.example/hooks")
    settings.WEBHOOK_ALLOW_LOOPBACK_HTTP = False
    with pytest.raises(WebhookRefused):
        webhook_url_check("http://127.0.0.1:9000/hooks")


@pytest.mark.django_db
def test_partner_webhook_secret_prints_the_derived_secret_and_records_that_it_was_shown():
    application, _secret = oauth_client_register_partner(name="partner", can_introspect=False, actor=TEST_ACTOR)
    stdout, stderr = StringIO(), StringIO()
    operator = operator_create(roles=["security_admin"])

    call_command(
        "partner_webhook_secret", application.client_id, stdout=stdout, stderr=stderr, stdin=operator_stdin(operator)
    )

    expected = hmac.new(WEBHOOK_SIGNING_KEY.encode(), application.client_id.encode(), hashlib.sha256).hexdigest()
    assert stdout.getvalue().strip() == expected
    event = AuditEvent.objects.get(event_type="oauth.webhook_secret_shown")
    assert (event.object_id, event.actor_staff, event.actor_client) == (
        application.client_id,
        str(operator.public_id),
        "",
    )
    assert expected not in json.dumps(event.payload)
    with pytest.raises(CommandError, match="no OAuth client"):
        call_command("partner_webhook_secret", "no-such-client", stdout=StringIO(), stderr=StringIO())


@pytest.mark.django_db
def test_partner_webhook_secret_refuses_to_work_without_a_signing_key(settings):
    application, _secret = oauth_client_register_partner(name="partner", can_introspect=False, actor=TEST_ACTOR)
    settings.WEBHOOK_SIGNING_KEY = ""

    with pytest.raises(CommandError, match="WEBHOOK_SIGNING_KEY"):
        call_command("partner_webhook_secret", application.client_id, stdout=StringIO(), stderr=StringIO())


@pytest.mark.parametrize(
    ("failed_attempts", "ceiling_seconds"),
    [(1, 30), (2, 60), (3, 120), (4, 240), (7, 1920), (8, 3600), (9, 3600), (50, 3600)],
)
def test_the_retry_delay_doubles_from_30_seconds_up_to_an_hour_with_jitter(failed_attempts, ceiling_seconds):
    delays = {retry_delay_seconds(failed_attempts) for _ in range(200)}

    assert min(delays) >= ceiling_seconds // 2
    assert max(delays) <= ceiling_seconds
    assert len(delays) > 1  # jittered


def test_the_stored_error_is_scrubbed_and_bounded():
    error = RuntimeError("550 mailbox jane.doe@example.com refused; token=abc123 " + "x" * 5000)

    summary = error_summary(error)

    assert summary.startswith("RuntimeError: 550 mailbox [email] refused; token=[redacted] xxx")
    assert len(summary) == 500


# --- issue 12: what a rewritten message can and cannot change --------------------------------------------


@pytest.mark.django_db
def test_a_webhook_says_what_the_transfer_row_says_even_if_the_stored_payload_was_rewritten(webhook_receiver):
    """The payload is written once (the runtime role may UPDATE only the delivery state: test_insider_runtime_role);
    even the owner's rewrite of it changes nothing a partner receives."""
    message, transfer, _client_id = webhook_message_for(webhook_receiver.url, amount_minor=12_34)
    OutboxMessage.objects.filter(pk=message.pk).update(  # the tables' owner: no grant stops it, the sender does
        payload={**message.payload, "amount": "99999.00", "amount_minor": "9999900", "kind": "deposit"}
    )

    assert outbox_message_deliver(message_id=message.pk) == Outcome.DELIVERED

    [(_path, _headers, body)] = webhook_receiver.requests
    data = json.loads(body)["data"]
    assert (data["amount"], data["amount_minor"], data["kind"]) == ("12.34", "1234", "transfer")
    assert data["transfer"] == str(transfer.public_id)
