"""Partner webhooks: where they go, how they are signed, how they are sent.

Signing (what partners implement, documented for them as is):

    secret    = hex(HMAC-SHA256(WEBHOOK_SIGNING_KEY, client_id))   # `partner_webhook_secret CLIENT_ID`
    signed    = f"{X-Fintech-Timestamp}.{raw request body}"
    signature = "sha256=" + hex(HMAC-SHA256(secret, signed))        # X-Fintech-Signature

A partner recomputes the signature over the raw body, compares in constant
time, refuses timestamps older than a few minutes (replay), and deduplicates
on `X-Fintech-Delivery`, which stays the same across retries of one message.

The per-client secret is derived, never stored: nothing to leak from the
database, nothing to migrate. The price: rotating `WEBHOOK_SIGNING_KEY`
changes every partner's secret at once.

Sending: https only (http only to loopback, and only where
`WEBHOOK_ALLOW_LOOPBACK_HTTP` is set), no redirects, bounded timeouts, and the
response body is never read, so a slow or hostile receiver costs at most the
timeouts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

SIGNATURE_HEADER = "X-Fintech-Signature"
TIMESTAMP_HEADER = "X-Fintech-Timestamp"
EVENT_HEADER = "X-Fintech-Event"
DELIVERY_HEADER = "X-Fintech-Delivery"
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 5.0
SIGNING_KEY_MIN_LENGTH = 32
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
USER_AGENT = "fintech-webhooks/1"


class WebhookRefused(Exception):
    """The URL may not receive webhooks here: retrying will not help (a permanent failure)."""


class WebhookFailed(Exception):
    """The receiver did not accept the delivery (non-2xx, timeout, connection error): retry later.

    The message holds no response body and no URL: it ends up in `last_error`.
    """


def _signing_key() -> bytes:
    key = getattr(settings, "WEBHOOK_SIGNING_KEY", "")
    if not isinstance(key, str) or len(key) < SIGNING_KEY_MIN_LENGTH:
        raise ImproperlyConfigured(
            f"WEBHOOK_SIGNING_KEY must be a random value of at least {SIGNING_KEY_MIN_LENGTH} characters."
        )
    return key.encode()


def webhook_secret_for_client(client_id: str) -> str:
    """The partner's signing secret: HMAC-SHA256(WEBHOOK_SIGNING_KEY, client_id), hex."""
    if not client_id:
        raise ValueError("a webhook secret belongs to an OAuth client id")
    return hmac.new(_signing_key(), client_id.encode(), hashlib.sha256).hexdigest()


def webhook_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`: the X-Fintech-Signature value."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def webhook_url_check(url: str) -> None:
    """Refuse anything but https (or http to loopback where explicitly allowed); `WebhookRefused` if so.

    The database already refuses other schemes (accounts_client_policy_webhook_url_https);
    this also refuses loopback http in production, where it would reach the worker's own host.
    """
    parts = urlsplit(url)
    if parts.username or parts.password or parts.fragment or not parts.hostname:
        raise WebhookRefused("webhook URL has user info, a fragment or no host")
    if parts.scheme == "https":
        return
    if (
        parts.scheme == "http"
        and parts.hostname in LOOPBACK_HOSTS
        and getattr(settings, "WEBHOOK_ALLOW_LOOPBACK_HTTP", False)
    ):
        return
    raise WebhookRefused("webhook URL is not https")


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """One signed delivery, ready to send: what the partner receives, byte for byte."""

    url: str
    body: bytes
    headers: dict[str, str]


def webhook_request_build(
    *, url: str, client_id: str, event: str, delivery_id: str, data: dict[str, Any]
) -> WebhookRequest:
    """Serialise and sign one event. The timestamp is the moment of this attempt, not of the event."""
    webhook_url_check(url)
    body = json.dumps({"id": delivery_id, "type": event, "data": data}, separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(time.time()))
    signature = webhook_signature(secret=webhook_secret_for_client(client_id), timestamp=timestamp, body=body)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: event,
        DELIVERY_HEADER: delivery_id,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature,
    }
    return WebhookRequest(url=url, body=body, headers=headers)


def webhook_send(request: WebhookRequest) -> None:
    """POST it once. 2xx is delivered; anything else raises `WebhookFailed` (the caller retries).

    Redirects are not followed (a 3xx is a failure: a receiver that moved must
    be re-registered by staff, not followed blindly). `stream=True` and an
    immediate close: the body, which may be large or slow, is never read.
    Exception texts are reduced to class names, because requests puts the URL
    (which may carry a partner's token in its query) into its messages.
    """
    try:
        response = requests.post(
            request.url,
            data=request.body,
            headers=request.headers,
            timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
            allow_redirects=False,
            stream=True,
        )
    except requests.RequestException as error:
        raise WebhookFailed(type(error).__name__) from None
    with response:
        status = response.status_code
    if not 200 <= status < 300:
        raise WebhookFailed(f"HTTP {status}")
