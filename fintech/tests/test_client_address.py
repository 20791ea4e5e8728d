from __future__ import annotations

import pytest
from django.test import RequestFactory

from fintech.client_address import client_ip


@pytest.fixture
def request_from():
    factory = RequestFactory()

    def build(peer: str, forwarded_for: str | None = None):
        extra = {"REMOTE_ADDR": peer}
        if forwarded_for is not None:
            extra["HTTP_X_FORWARDED_FOR"] = forwarded_for
        return factory.get("/", **extra)

    return build


def test_forwarded_for_is_ignored_without_trusted_proxies(settings, request_from):
    settings.TRUSTED_PROXIES = []

    assert client_ip(request_from("203.0.113.9", "198.51.100.1")) == "203.0.113.9"


def test_forwarded_for_from_an_untrusted_peer_is_ignored(settings, request_from):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]

    assert client_ip(request_from("203.0.113.9", "198.51.100.1")) == "203.0.113.9"


def test_the_rightmost_untrusted_hop_is_the_client(settings, request_from):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    # The client forged the first entry; our proxies appended the real ones.
    forwarded = "1.2.3.4, 198.51.100.7, 10.0.0.5"

    assert client_ip(request_from("10.0.0.6", forwarded)) == "198.51.100.7"


def test_a_malformed_chain_falls_back_to_the_peer(settings, request_from):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]

    assert client_ip(request_from("10.0.0.6", "not-an-ip")) == "10.0.0.6"


def test_over_the_terminators_unix_socket_its_forwarded_address_is_the_client(settings, request_from):
    """No peer address: the Unix socket only nginx can open, whose X-Forwarded-For is the address it saw."""
    settings.TRUSTED_PROXIES = []

    assert client_ip(request_from("", "198.51.100.7")) == "198.51.100.7"
    assert client_ip(request_from("", None)) == ""
