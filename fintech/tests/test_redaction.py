"""Redaction must hide every secret it knows about and leave ordinary numbers readable."""

from __future__ import annotations

import copy
import time

import pytest

from fintech.redaction import (
    REDACTED,
    is_sensitive_key,
    luhn_valid,
    mask_value,
    scrub_mapping,
    scrub_text,
)


@pytest.mark.parametrize(
    ("digits", "expected"),
    [
        ("4111111111111111", True),
        ("5555555555554444", True),
        ("378282246310005", True),
        ("4222222222222", True),
        ("0", True),
        ("4111111111111112", False),
        ("1234567812345678", False),
        ("", False),
        ("4111 1111 1111 1111", False),
        ("411111111111111a", False),
        ("٤١١١", False),  # non-ASCII digits are not card digits
    ],
)
def test_luhn_valid(digits: str, expected: bool) -> None:
    assert luhn_valid(digits) is expected


SCRUB_CASES = [
    # Cards, plain and grouped; only the last four survive.
    ("card 4111111111111111 ok", "card [card:****1111] ok"),
    ("card 4111 1111 1111 1111.", "card [card:****1111]."),
    ("4111-1111-1111-1111", "[card:****1111]"),
    ("amex 3782 822463 10005 and 378282246310005", "amex [card:****0005] and [card:****0005]"),
    ("13 digits 4222222222222", "13 digits [card:****2222]"),
    ("pan=5555555555554444&x=1", "pan=[card:****4444]&x=1"),
    ("qty 100 4111 1111 1111 1111", "qty 100 [card:****1111]"),
    ("ref 1234 4111 1111 1111 1111", "ref 1234 [card:****1111]"),
    # National ids.
    ("ssn 123-45-6789.", "ssn [national-id]."),
    ("nino AB123456C / AB 12 34 56 C", "nino [national-id] / [national-id]"),
    # Emails.
    ("mail john.doe+tag@example.co.uk, please", "mail [email], please"),
    # Bearer tokens, Authorization headers and dict reprs.
    ("Bearer abc.def.ghi", "Bearer [token]"),
    ("sent bearer xyz123 upstream", "sent bearer [token] upstream"),
    ("Authorization: Basic dXNlcjpwYXNz", "Authorization: [redacted]"),
    (
        'GET /\nauthorization: Digest username="a", response="b"\nHost: x',
        "GET /\nauthorization: [redacted]\nHost: x",
    ),
    ("{'authorization': 'Bearer abc.def.ghi', 'x': 1}", "{'authorization': '[redacted]', 'x': 1}"),
    ('{"HTTP_AUTHORIZATION": "Token s3cr3t"}', '{"HTTP_AUTHORIZATION": "[redacted]"}'),
    ("Cookie: sessionid=abc; csrftoken=def", "Cookie: [redacted]"),
    # Key/value secrets in the shapes they appear in logs.
    ("password=hunter2&user=bob", "password=[redacted]&user=bob"),
    ('{"password": "hun\\"ter2", "user": "bob"}', '{"password": "[redacted]", "user": "bob"}'),
    ("{'passwd': 'x y z', 'secret': b'raw'}", "{'passwd': '[redacted]', 'secret': b'[redacted]'}"),
    (
        "client_secret=abc token=def access_token=ghi",
        "client_secret=[redacted] token=[redacted] access_token=[redacted]",
    ),
    (
        "refresh_token: 'r1' api_key=k1 code_verifier=v1",
        "refresh_token: '[redacted]' api_key=[redacted] code_verifier=[redacted]",
    ),
    ("new_password: foo", "new_password: [redacted]"),
    ("{'password': 'never closed", "{'password': '[redacted]'"),
    # API keys, JWTs; vault tokens are references, not secrets.
    ("key fk_live_abcDEF123 and fk_test_x9", "key [api-key] and [api-key]"),
    ("vault tok_4f9a8b7c6d", "vault tok_4f9a8b7c6d"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl end", "jwt [jwt] end"),
]

UNCHANGED_CASES = [
    "amount 1234.56 EUR, fee 0.99",
    "balance 1234567890123.45",
    "on 2024-01-15 and 2024-01-15 2024-02-20T10:30:00Z",
    "uuid 550e8400-e29b-41d4-a716-446655440000",
    "digit-only uuid 12345678-1234-1234-1234-123456789012",
    "non-luhn 4111111111111112 and 1234567812345678",
    "20 digits 41111111111111111111",
    "glued ids x4111111111111111 4111111111111111x",
    "phone +44 7911 123456",
    "the password reset link was sent",
    "card_token=tok_abc",
    "",
]


@pytest.mark.parametrize(("text", "expected"), SCRUB_CASES)
def test_scrub_text(text: str, expected: str) -> None:
    assert scrub_text(text) == expected


@pytest.mark.parametrize("text", UNCHANGED_CASES)
def test_scrub_text_leaves_ordinary_values(text: str) -> None:
    assert scrub_text(text) == text


@pytest.mark.parametrize("text", [case[0] for case in SCRUB_CASES] + UNCHANGED_CASES)
def test_scrub_text_is_idempotent(text: str) -> None:
    once = scrub_text(text)
    assert scrub_text(once) == once


def test_scrub_text_is_fast_on_large_and_hostile_input() -> None:
    chunk = "user a@b.co paid 1234.56 with 4111 1111 1111 1111 password=x Bearer t " * 10
    hostile = ["a" * 50_000, "1 " * 25_000, "x@" * 25_000, "'password': '" + "\\'" * 20_000]
    started = time.perf_counter()
    for _ in range(100):
        scrub_text(chunk)
    for text in hostile:
        scrub_text(text)
    assert time.perf_counter() - started < 3.0


@pytest.mark.parametrize(
    ("value", "keep_last", "expected"),
    [
        ("4111111111111111", 4, "************1111"),
        ("4111111111111111", 0, "****"),
        ("12345678", 4, "****"),  # too short to show half of it
        ("123456789", 4, "*****6789"),
        ("abc", 1, "**c"),
        (4111111111111111, 4, "************1111"),
        (None, 4, "****"),
        ("secret", -3, "****"),
    ],
)
def test_mask_value(value: object, keep_last: int, expected: str) -> None:
    assert mask_value(value, keep_last=keep_last) == expected


def test_is_sensitive_key() -> None:
    for key in ("Password", "HTTP_AUTHORIZATION", "card-number", "CVV", "new_password", "webhook_secret", "email"):
        assert is_sensitive_key(key), key
    for key in ("card_token", "amount", "user_id", "description"):
        assert not is_sensitive_key(key), key
    assert is_sensitive_key("iban", sensitive_keys={"IBAN"})


def test_scrub_mapping_recurses_and_does_not_mutate() -> None:
    data = {
        "Password": "hunter2",
        "Authorization": "Bearer abc",
        "card": {"number": "4111111111111111", "CVC": "123", "token": "tok_1", "card_token": "tok_2"},
        "items": [{"note": "paid with 4111-1111-1111-1111"}, ("ssn 123-45-6789", 5555555555554444, 42)],
        "nothing": None,
        "national_id": None,
        "amount": 1234.56,
        "ok": True,
        "a@b.com": "keyed by email",
        "raw": b"mail a@b.com",
    }
    original = copy.deepcopy(data)

    assert scrub_mapping(data) == {
        "Password": REDACTED,
        "Authorization": REDACTED,
        "card": {"number": REDACTED, "CVC": REDACTED, "token": REDACTED, "card_token": "tok_2"},
        "items": [{"note": "paid with [card:****1111]"}, ("ssn [national-id]", "[card:****4444]", 42)],
        "nothing": None,
        "national_id": None,
        "amount": 1234.56,
        "ok": True,
        "[email]": "keyed by email",
        "raw": "mail [email]",
    }
    assert data == original


def test_scrub_mapping_custom_keys_replace_defaults() -> None:
    assert scrub_mapping({"iban": "DE89", "number": "7"}, sensitive_keys={"IBAN"}) == {"iban": REDACTED, "number": "7"}


def test_scrub_mapping_bounds_depth_and_cycles() -> None:
    nested: dict = {"v": "a@b.com"}
    for _ in range(30):
        nested = {"n": nested}
    result = scrub_mapping(nested, max_depth=3)
    assert result == {"n": {"n": {"n": "[max-depth]"}}}

    cycle: list = []
    cycle.append(cycle)
    assert scrub_mapping(cycle, max_depth=2) == [["[max-depth]"]]


def test_scrub_mapping_truncates_long_strings_without_leaking_a_split_card() -> None:
    text = "x" * 95 + " 4111111111111111 tail"
    result = scrub_mapping({"note": text}, max_string_length=100)["note"]
    assert result == "x" * 95 + " [car...[truncated]"
    assert "41111" not in result


def test_partner_api_keys_are_masked_whole_including_the_secret_after_the_prefix():
    key = "fk_live_ABCD2345_q8Zr-0pT_mkd9s0LxYw1aZ3cV5bN7mQ2wE4rT6yU8iO"

    assert scrub_text(f"X-API-Key: {key}") == "X-API-Key: [redacted]"
    assert scrub_text(f"key {key} used") == "key [api-key] used"


def test_single_use_link_secrets_in_logged_paths_are_hidden():
    """Found in review: a CSRF refusal logged a staff invitation link that still worked."""
    from fintech.redaction import scrub_text

    invitation = "Forbidden (Origin checking failed): /accounts/staff-invitation/ZjgCPbu0aB1cD2eF3gH4iJ5kLfxA/"
    reset = "Not Found: /accounts/password/reset/MTIzNDU2/cf3x2-0123456789abcdef0123/"
    assert scrub_text(invitation).endswith("/accounts/staff-invitation/[link-secret]/")
    assert scrub_text(reset).endswith("/accounts/password/reset/MTIzNDU2/[link-secret]/")
    assert scrub_text("GET /accounts/staff-invitation/ 200") == "GET /accounts/staff-invitation/ 200"
