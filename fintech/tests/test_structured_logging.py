"""End-to-end: a real logger, handler filters and formatter, asserting on emitted text."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from fintech.request_context import bind_request_id, reset_request_id
from fintech.structured_logging import JsonFormatter, RequestContextFilter, ScrubbingFilter

TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


class Captured:
    def __init__(self, logger: logging.Logger, stream: io.StringIO) -> None:
        self.logger = logger
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines()]


@pytest.fixture
def captured() -> Iterator[Captured]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestContextFilter())
    handler.addFilter(ScrubbingFilter())
    handler.setFormatter(JsonFormatter())
    # A parent logger holds the handler; tests log through a child so the
    # filters are proven to work on propagated records (logger filters would not).
    parent = logging.getLogger(f"test_structured_logging.{uuid.uuid4().hex}")
    parent.setLevel(logging.DEBUG)
    parent.propagate = False
    parent.addHandler(handler)
    try:
        yield Captured(parent.getChild("child"), stream)
    finally:
        parent.removeHandler(handler)


CARDS = {
    "plain": "4111111111111111",
    "spaced": "5555 5555 5555 4444",
    "dashed": "4012-8888-8888-1881",
    "exception": "4000056655665556",
    "extra": "6011111111111117",
}
RAW_SECRETS = [
    "jane.doe@example.com",
    "123-45-6789",
    "abc.def.ghi",
    "Basic dXNlcjpwYXNz",
    "dXNlcjpwYXNz",
    "sk-args-secret",
    "sk-extra-secret",
    "hunter2-Secret!",
    "AB123456C",
]


def _log_everything(logger: logging.Logger) -> None:
    logger.info("charging card %s", CARDS["plain"])
    logger.info("charging card %s for %s", CARDS["spaced"], "jane.doe@example.com")
    logger.info(f"legacy f-string card {CARDS['dashed']} ssn 123-45-6789 nino AB123456C")
    logger.info("upstream call with Bearer abc.def.ghi")
    logger.info("incoming headers %s", {"HTTP_AUTHORIZATION": "Bearer sk-args-secret", "HTTP_ACCEPT": "json"})
    logger.info(
        "request received",
        extra={
            "headers": {"Authorization": "Basic dXNlcjpwYXNz", "Accept": "json"},
            "raw_header": "Authorization: Bearer sk-extra-secret",
            "note": f"card on file {CARDS['extra']}",
        },
    )
    logger.warning("login failed password=%s user=%s", "hunter2-Secret!", "bob")
    try:
        raise ValueError(f"charge declined for {CARDS['exception']}")
    except ValueError:
        logger.exception("payment failed for %s", "jane.doe@example.com")


def test_no_raw_secret_survives(captured: Captured) -> None:
    _log_everything(captured.logger)
    text = captured.text
    digits_only = re.sub(r"[\s-]", "", text)

    for card in CARDS.values():
        assert card not in text
        pan = re.sub(r"[\s-]", "", card)
        assert pan not in text
        assert pan not in digits_only
        assert pan[:12] not in digits_only  # nothing beyond the last four
    for secret in RAW_SECRETS:
        assert secret not in text, secret


def test_each_line_is_json_with_expected_values(captured: Captured) -> None:
    token = bind_request_id("req-7f3a")
    try:
        _log_everything(captured.logger)
    finally:
        reset_request_id(token)

    lines = captured.lines()
    assert len(lines) == 8
    for line in lines:
        assert line["request_id"] == "req-7f3a"
        assert TS_RE.match(line["ts"]), line["ts"]
        assert line["logger"] == captured.logger.name
        assert {"ts", "level", "logger", "message", "request_id"} <= line.keys()

    assert [line["message"] for line in lines] == [
        "charging card [card:****1111]",
        "charging card [card:****4444] for [email]",
        "legacy f-string card [card:****1881] ssn [national-id] nino [national-id]",
        "upstream call with Bearer [token]",
        "incoming headers {'HTTP_AUTHORIZATION': '[redacted]', 'HTTP_ACCEPT': 'json'}",
        "request received",
        "login failed password=[redacted] user=bob",
        "payment failed for [email]",
    ]
    extras = lines[5]
    assert extras["headers"] == {"Authorization": "[redacted]", "Accept": "json"}
    assert extras["raw_header"] == "Authorization: [redacted]"
    assert extras["note"] == "card on file [card:****1117]"
    assert lines[6]["level"] == "WARNING"

    failure = lines[7]
    assert failure["level"] == "ERROR"
    assert failure["exception"].startswith("Traceback (most recent call last):")
    assert failure["exception"].endswith("ValueError: charge declined for [card:****5556]")


def test_request_id_defaults_to_dash_and_explicit_extra_wins(captured: Captured) -> None:
    captured.logger.info("outside a request")
    token = bind_request_id("req-ambient")
    try:
        captured.logger.info("celery task", extra={"request_id": "req-origin"})
    finally:
        reset_request_id(token)

    first, second = captured.lines()
    assert first["request_id"] == "-"
    assert second["request_id"] == "req-origin"


def test_ordinary_values_survive(captured: Captured) -> None:
    order_id = "550e8400-e29b-41d4-a716-446655440000"
    captured.logger.info(
        "order %s amount %s on %s ref %s",
        order_id,
        "1234.56",
        "2024-01-15",
        "4111111111111112",
        extra={"amount": Decimal("1234.56"), "count": 3, "card_token": "tok_abc123", "ratio": 0.5},
    )
    (line,) = captured.lines()
    assert line["message"] == f"order {order_id} amount 1234.56 on 2024-01-15 ref 4111111111111112"
    assert line["amount"] == "1234.56"
    assert line["count"] == 3
    assert line["card_token"] == "tok_abc123"
    assert line["ratio"] == 0.5


def test_sensitive_extra_names_and_objects_are_scrubbed(captured: Captured) -> None:
    class Request:
        def __str__(self) -> str:
            return "<Request GET /reset?token=abc123&email=jane.doe@example.com>"

    captured.logger.info("x", extra={"password": "hunter2", "email": "a@b.co", "request": Request(), "pan": None})
    (line,) = captured.lines()
    assert line["password"] == "[redacted]"
    assert line["email"] == "[redacted]"
    assert line["pan"] is None
    assert line["request"] == "<Request GET /reset?token=[redacted]&email=[email]>"


def test_broken_format_args_do_not_raise(captured: Captured) -> None:
    captured.logger.info("value %d for card", "4111111111111111")
    (line,) = captured.lines()
    assert line["message"] == "value %d for card args=('[card:****1111]',)"


def test_filtering_twice_is_harmless(captured: Captured) -> None:
    captured.logger.addFilter(ScrubbingFilter())  # logger *and* handler filter
    try:
        captured.logger.info("a %s b", "Authorization: Bearer abc.def.ghi")
        try:
            raise RuntimeError("card 4111111111111111")
        except RuntimeError:
            captured.logger.exception("boom")
    finally:
        captured.logger.filters.clear()

    first, second = captured.lines()
    assert first["message"] == "a Authorization: [redacted]"
    assert second["exception"].endswith("RuntimeError: card [card:****1111]")


def test_stack_info_is_scrubbed(captured: Captured) -> None:
    def leaky_frame(card: str) -> None:
        captured.logger.info("with stack", stack_info=True)

    leaky_frame("4111111111111111")  # this source line is quoted in the stack
    (line,) = captured.lines()
    assert line["stack"].startswith("Stack (most recent call last):")
    assert "4111111111111111" not in line["stack"]
    assert "[card:****1111]" in line["stack"]


def test_formatter_alone_handles_odd_extras() -> None:
    record = logging.LogRecord("svc", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    record.created = datetime(2024, 1, 15, 10, 30, 0, 123456, tzinfo=UTC).timestamp()
    record.when = datetime(2024, 1, 15, tzinfo=UTC)
    record.level = "custom"
    loop: list = []
    loop.append(loop)

    line = json.loads(JsonFormatter().format(record))
    assert line == {
        "ts": "2024-01-15T10:30:00.123Z",
        "level": "INFO",
        "logger": "svc",
        "message": "hello world",
        "request_id": "-",
        "when": "2024-01-15 00:00:00+00:00",
        "extra_level": "custom",
    }

    record.loop = loop  # circular: json.dumps raises, the formatter must not
    assert json.loads(JsonFormatter().format(record))["loop"] == "[[...]]"
