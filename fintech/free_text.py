"""No card number in free text: references, reasons, descriptions and names are refused when they hold one.

Whatever a customer or a staff member types is stored in clear (a transfer's
reference, a refund's reason, an unmask reason in the audit trail), shown on
statements and kept for years: a card number there is outside the vault and
outside PCI DSS scope controls. What counts as a card number is the vault's
own rule (`fintech.card_numbers`), so the text refused is exactly what the
vault would accept as a card.

Three doors, one rule:

* `FreeTextField` for DRF input serializers: it refuses during validation,
  before the view calls `fintech.idempotency.idempotent_response`, so a
  refused request stores nothing, not even its idempotency record, and a
  retry with the same key and a clean body goes through;
* `free_text_check` for services (defence in depth for every other caller:
  management commands, tasks, admin actions);
* `validate_free_text` for Django forms (the admin), where a refusal is a
  form error shown next to the field rather than a problem response.

The refusal never repeats the text: it would put the card number in the
response, the logs and (for a stored refusal) the idempotency record.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from rest_framework import serializers

from fintech.card_numbers import text_contains_card_number
from fintech.problems import DomainError

CARD_NUMBER_IN_FREE_TEXT = "reference_contains_card_number"


class ReferenceContainsCardNumber(DomainError):
    """422 with the field named in `errors`, the shape validation errors have, so a client can point at it."""

    status = 422
    code = CARD_NUMBER_IN_FREE_TEXT
    title = "Free text must not contain a card number"

    def __init__(self, detail: str | None = None, *, field: str = "reference", **kwargs: Any):
        message = f"The {field} contains a card number; card numbers are only ever stored in the vault."
        extra = {"errors": [{"field": field, "code": self.code, "message": message}], **kwargs.pop("extra", {})}
        super().__init__(detail or message, extra=extra, **kwargs)


def free_text_check(text: Any, *, field: str = "reference") -> Any:
    """`text` unchanged, or `ReferenceContainsCardNumber` when it holds a number the vault would take as a card."""
    if isinstance(text, str) and text_contains_card_number(text):
        raise ReferenceContainsCardNumber(field=field)
    return text


class FreeTextField(serializers.CharField):
    """A `CharField` that refuses a card number with 422 `reference_contains_card_number`.

    The domain error is raised from field validation on purpose: DRF lets
    anything but its own `ValidationError` through `is_valid`, and the
    project's exception handler turns it into the problem response. A DRF
    `ValidationError` would be a generic 400 `validation_error`.
    """

    def to_internal_value(self, data: Any) -> str:
        return free_text_check(super().to_internal_value(data), field=self.field_name or "text")


def validate_free_text(value: str) -> None:
    """Django form validator (admin forms): the same rule, reported as a form error on the field."""
    if text_contains_card_number(value):
        raise ValidationError(
            "This contains a card number. Card numbers are only ever stored in the vault; leave it out.",
            code=CARD_NUMBER_IN_FREE_TEXT,
        )
