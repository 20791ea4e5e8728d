"""The free-text guard's three doors: DRF field (422 problem), service check, Django form validator."""

from __future__ import annotations

import pytest
from django import forms
from rest_framework import serializers

from fintech.free_text import (
    FreeTextField,
    ReferenceContainsCardNumber,
    free_text_check,
    validate_free_text,
)
from fintech.problems import problem_exception_handler

CARD_TEXT = "refund to card 4111 1111 1111 1111 please"


class NoteInput(serializers.Serializer):
    reason = FreeTextField(max_length=200)


class NoteForm(forms.Form):
    reason = forms.CharField(max_length=200, validators=[validate_free_text])


def test_a_card_in_a_serializer_field_is_a_domain_error_not_a_validation_error():
    given = NoteInput(data={"reason": CARD_TEXT})

    with pytest.raises(ReferenceContainsCardNumber) as refused:
        given.is_valid(raise_exception=True)

    assert refused.value.extra["errors"][0]["field"] == "reason"


def test_clean_text_passes_the_serializer_field():
    given = NoteInput(data={"reason": "invoice 9999 9999 9999 9995"})

    assert given.is_valid(), given.errors
    assert given.validated_data == {"reason": "invoice 9999 9999 9999 9995"}


def test_the_refusal_renders_as_a_422_problem_that_never_repeats_the_text():
    response = problem_exception_handler(ReferenceContainsCardNumber(field="reason"), {"request": None})

    assert response.status_code == 422
    assert response.data["code"] == "reference_contains_card_number"
    assert response.data["errors"] == [
        {
            "field": "reason",
            "code": "reference_contains_card_number",
            "message": "The reason contains a card number; card numbers are only ever stored in the vault.",
        }
    ]
    assert "4111" not in str(response.data)


def test_the_service_check_returns_clean_text_and_refuses_a_card():
    assert free_text_check("rent march", field="reference") == "rent march"
    with pytest.raises(ReferenceContainsCardNumber):
        free_text_check("4111111111111111", field="reference")


def test_a_form_shows_the_refusal_on_the_field():
    form = NoteForm(data={"reason": CARD_TEXT})

    assert not form.is_valid()
    assert form.errors.as_data()["reason"][0].code == "reference_contains_card_number"
    assert NoteForm(data={"reason": "ticket 4711"}).is_valid()
