"""JSON log lines with request correlation and PII scrubbing.

Wired up in ``settings.LOGGING``: both filters go on the *handler*, because
handler filters run before the handler formats the record, and logger filters
are skipped for records propagated from child loggers.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from fintech.redaction import is_sensitive_key, scrub_mapping, scrub_text

__all__ = ["JsonFormatter", "RequestContextFilter", "ScrubbingFilter"]

_NO_REQUEST = "-"
# Attributes every LogRecord has; anything else on a record came from ``extra=``
# (or from a filter such as ours). ``message``/``asctime`` are set by Formatter,
# ``taskName`` exists from Python 3.12.
_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
_CORE_KEYS = ("ts", "level", "logger", "message", "request_id", "exception", "stack")
# Extras of these types survive as-is; anything else is stringified (scrubbed)
# because its ``str()`` would end up in the log line unchecked otherwise.
_PLAIN_TYPES = (str, int, float, bool, type(None), dict, list, tuple)


def _extra_items(record: logging.LogRecord) -> list[tuple[str, Any]]:
    return [(key, value) for key, value in record.__dict__.items() if key not in _STANDARD_ATTRS]


class JsonFormatter(logging.Formatter):
    """One JSON object per line, so log shippers need no multi-line parsing.

    Deliberately does no scrubbing of its own: that is ``ScrubbingFilter``'s
    job, and a formatter cannot undo what other handlers already emitted.
    """

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or _NO_REQUEST,
        }
        for key, value in _extra_items(record):
            if key != "request_id":
                # Never let a caller's extra overwrite the fields log queries rely on.
                payload[f"extra_{key}" if key in _CORE_KEYS else key] = value
        # Same caching contract as logging.Formatter, which ScrubbingFilter
        # relies on: a pre-set exc_text wins over re-rendering exc_info.
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            payload["exception"] = record.exc_text
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return self._dumps(payload)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """ISO 8601 UTC with milliseconds, independent of the server's timezone."""
        moment = datetime.fromtimestamp(record.created, tz=UTC)
        if datefmt:
            return moment.strftime(datefmt)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    @staticmethod
    def _dumps(payload: dict[str, Any]) -> str:
        # ensure_ascii keeps U+2028 and friends escaped, so "one line" holds
        # for every line-splitting consumer, not just those splitting on "\n".
        try:
            return json.dumps(payload, default=str)
        except (TypeError, ValueError):
            # Circular extras or a __str__ that raises: a degraded line beats
            # logging's handleError() swallowing the whole record.
            safe = {key: value if isinstance(value, str) else _safe_str(value) for key, value in payload.items()}
            return json.dumps(safe)


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:  # a log call must never raise
        return f"<unprintable {type(value).__name__}>"


class RequestContextFilter(logging.Filter):
    """Stamps the current request id so every line of a request can be correlated."""

    def filter(self, record: logging.LogRecord) -> bool:
        # An explicit extra={"request_id": ...} (e.g. from a Celery task that
        # carries the originating request's id) beats the ambient context.
        if getattr(record, "request_id", None) in (None, "", _NO_REQUEST):
            from fintech.request_context import current_request_id

            # django.request logs a failed response after our middleware has
            # returned, but hands the request along on the record.
            from_request = getattr(getattr(record, "request", None), "request_id", None)
            record.request_id = current_request_id() or from_request or _NO_REQUEST
        return True


class ScrubbingFilter(logging.Filter):
    """Rewrites the record in place so no formatter or later handler sees raw PII.

    Mutation rather than a copy is the point: the same record object is passed
    to every handler of the logger hierarchy. The cost is that handlers after
    this one get pre-rendered text and no ``exc_info`` object.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub_text(self._render(record))
        record.args = ()
        if "message" in record.__dict__:
            record.message = record.msg

        for key, value in _extra_items(record):
            setattr(record, key, self._scrub_extra(key, value))

        if record.exc_info or record.exc_text:
            text = record.exc_text or logging.Formatter().formatException(record.exc_info)  # type: ignore[arg-type]
            record.exc_text = scrub_text(text)
            record.exc_info = None
        if record.stack_info:
            record.stack_info = scrub_text(record.stack_info)
        return True

    @staticmethod
    def _render(record: logging.LogRecord) -> str:
        try:
            return record.getMessage()
        except Exception:  # a bad format string must not break the caller
            return f"{_safe_str(record.msg)} args={_safe_str(record.args)}"

    @staticmethod
    def _scrub_extra(key: str, value: Any) -> Any:
        if is_sensitive_key(key):
            return None if value is None else "[redacted]"
        if isinstance(value, _PLAIN_TYPES):
            return scrub_mapping(value)
        return scrub_text(_safe_str(value))
