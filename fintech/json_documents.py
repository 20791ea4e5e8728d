"""JSON the platform reads: request bodies from anyone, jsonb columns from its own raw SQL.

Request bodies: `json.loads` on a deeply nested document (`[[[[...]]]]`, 100k
levels fit in a 1 MiB body) raises RecursionError, which is not a ValueError,
so every caller that expects "invalid JSON" instead answered 500. One loader
turns it into ValueError; the DRF parser and the audit middleware both use it.

jsonb columns: Django has psycopg hand them to a plain cursor as text.
"""

from __future__ import annotations

import json
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class JSONNestedTooDeeply(ValueError):
    """The document nests deeper than the interpreter's recursion limit: refused like any invalid JSON."""


def json_body_loads(body: bytes | str) -> Any:
    """`json.loads` for untrusted bodies: ValueError for anything that is not a JSON document, deep nesting too."""
    try:
        return json.loads(body)
    except RecursionError:
        raise JSONNestedTooDeeply("JSON nested too deeply") from None


def json_column(value: Any) -> Any:
    """A json/jsonb value read through a plain cursor (text) or already decoded by the driver."""
    return json.loads(value) if isinstance(value, (str, bytes)) else value


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, answering 400 (not 500) to a document nested too deeply to parse."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None
