"""Find card numbers already stored in free text: rows written before free text was checked for them.

Free text has been refused when it holds a card number (`fintech.free_text`)
only since that check existed; this finds what got in before, or through a
path that skipped the check (a raw write, an old release). It reads the
columns customers and staff fill in, plus the JSON documents that copy them:
audit payloads, outbox payloads, stored idempotent responses.

Reads only, in keyset-paginated batches by primary key, so memory is bounded
by one batch however large the tables are, and no lock is held. It lives in
the ledger app because it reads every app's tables and the ledger is the top
layer. A finding names the table, the row id, the column (with the JSON path)
and the card masked as brand and last four; the number itself never leaves
this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import models

from accounts.models import PartnerApiKey
from audit.models import AuditEvent
from fintech.card_numbers import card_number_masked, card_numbers_in_text
from fintech.models import IdempotencyRecord
from ledger.models import Hold, OutboxMessage, ReviewCase, Transfer, TransferRule

DEFAULT_BATCH_SIZE = 1000
MAX_BATCH_SIZE = 10_000
MAX_JSON_DEPTH = 20
SMALLEST_CARD_NUMBER = 10**12  # 13 digits: a card stored as a JSON number is still a card
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True, slots=True)
class StoredFreeText:
    """A table whose free text is scanned: the columns holding text and those holding JSON documents."""

    model: type[models.Model]
    text_columns: tuple[str, ...] = ()
    json_columns: tuple[str, ...] = ()

    @property
    def table(self) -> str:
        return self.model._meta.db_table


# Every place free text typed by a customer or a staff member is stored, or copied to.
STORED_FREE_TEXT: tuple[StoredFreeText, ...] = (
    StoredFreeText(Transfer, text_columns=("reference",)),
    StoredFreeText(Hold, text_columns=("reference",)),
    StoredFreeText(OutboxMessage, text_columns=("last_error",), json_columns=("payload",)),
    StoredFreeText(AuditEvent, json_columns=("payload",)),
    StoredFreeText(IdempotencyRecord, json_columns=("response_body",)),  # keys are stored as digests only
    StoredFreeText(PartnerApiKey, text_columns=("name", "revoked_reason")),
    StoredFreeText(TransferRule, text_columns=("name",)),
    StoredFreeText(ReviewCase, text_columns=("decision_reason",), json_columns=("reasons",)),
)
TABLES = tuple(source.table for source in STORED_FREE_TEXT)


@dataclass(frozen=True, slots=True)
class StoredCardNumber:
    """One card number found: where it is, and the card masked (brand and last four only)."""

    table: str
    row_id: int
    column: str  # a column, or a column and the JSON path inside it: `payload.reference`
    card_masked: str

    def __str__(self) -> str:
        return f"{self.table} id={self.row_id} {self.column}: {self.card_masked}"


def stored_card_numbers(
    *, tables: tuple[str, ...] = TABLES, batch_size: int = DEFAULT_BATCH_SIZE
) -> Iterator[StoredCardNumber]:
    """Every card number held in the free text of `tables`, table by table, in primary-key order."""
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch size must be 1-{MAX_BATCH_SIZE}")
    unknown = set(tables) - set(TABLES)
    if unknown:
        raise ValueError(f"not a table with stored free text: {', '.join(sorted(unknown))}")
    for source in STORED_FREE_TEXT:
        if source.table in tables:
            yield from _source_scan(source, batch_size=batch_size)


def _source_scan(source: StoredFreeText, *, batch_size: int) -> Iterator[StoredCardNumber]:
    columns = source.text_columns + source.json_columns
    last_id = 0
    while True:
        batch = list(
            source.model.objects.filter(pk__gt=last_id).order_by("pk").values_list("pk", *columns)[:batch_size]
        )
        if not batch:
            return
        for row_id, *values in batch:
            for column, value in zip(columns, values, strict=True):
                for path, text in _texts_in(value, column, depth=0):
                    for card in card_numbers_in_text(text):
                        yield StoredCardNumber(source.table, row_id, path, card_number_masked(card))
        last_id = batch[-1][0]


def _texts_in(value: Any, path: str, *, depth: int) -> Iterator[tuple[str, str]]:
    """Each string (and each number long enough to be a card) inside a JSON document, with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, int) and not isinstance(value, bool) and value >= SMALLEST_CARD_NUMBER:
        yield path, str(value)
    elif depth >= MAX_JSON_DEPTH:
        return
    elif isinstance(value, dict):
        for key, item in value.items():
            # A path names a key only when it is a plain identifier: a key could be the card itself.
            step = f".{key}" if _PLAIN_KEY.match(key) else ".<key>"
            yield from _texts_in(key, f"{path}.<key>", depth=depth + 1)
            yield from _texts_in(item, path + step, depth=depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _texts_in(item, f"{path}[{index}]", depth=depth + 1)
