"""Forms of the audit admin: what a compliance officer must state before seeing PII in clear."""

from __future__ import annotations

from django import forms

from audit.services.events import PII_PURPOSES
from fintech.free_text import CARD_NUMBER_IN_FREE_TEXT, validate_free_text

REASON_MIN_LENGTH = 10
# The reason lands in the event payload, which is kept for seven years: bound it.
REASON_MAX_LENGTH = 500


def purpose_choices() -> list[tuple[str, str]]:
    """The legal grounds a PII read may cite, in a stable order, with a blank first option."""
    return [("", "---------")] + [(purpose, purpose.replace("_", " ").capitalize()) for purpose in sorted(PII_PURPOSES)]


class UnmaskActorForm(forms.Form):
    """Why the officer needs to see the actor's identity; both answers are recorded in the trail."""

    purpose = forms.ChoiceField(choices=purpose_choices, help_text="The legal ground for seeing this PII.")
    reason = forms.CharField(
        min_length=REASON_MIN_LENGTH,
        max_length=REASON_MAX_LENGTH,
        validators=[validate_free_text],  # kept seven years in clear: never a card number
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="For example the case or ticket number. Recorded in the audit trail; do not paste PII here.",
    )

    def full_clean(self) -> None:
        super().full_clean()
        if self.is_bound and self.has_error("reason", CARD_NUMBER_IN_FREE_TEXT):
            # The form is shown again with its errors: never with the card number typed into it.
            self.data = self.data.copy()
            self.data["reason"] = ""
