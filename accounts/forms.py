"""Admin forms for the email-login user model and the customer profile."""

from django import forms
from django.contrib.auth.forms import BaseUserCreationForm

from accounts.models import User
from audit.forms import UnmaskActorForm


class UserCreationForm(BaseUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class UserChangeForm(forms.ModelForm):
    """Nothing is edited on the admin's user page (accounts/admin.py), least of all a password.

    Django's own change form carries a password field and a link to set one;
    no staff member may set anyone's password, so this form has neither.
    """

    class Meta:
        model = User
        fields = ()


# What an officer may reveal of a customer, in the order a KYC file lists it.
REVEALABLE_FIELDS = (
    ("full_name", "Full name"),
    ("date_of_birth", "Date of birth"),
    ("phone", "Phone"),
    ("postal_address", "Postal address"),
    ("credit_score", "Credit score"),
    ("email", "Email"),
)
IDENTITY_FIELDS = frozenset(name for name, _ in REVEALABLE_FIELDS) - {"email"}


class RevealIdentityForm(UnmaskActorForm):
    """Which of a customer's values to see in clear, and (as for an actor unmask) the purpose and the reason.

    Only the values on file are offered: before identity capture that is the
    email alone, so a read of nothing is never recorded as a read.
    """

    reveal = forms.MultipleChoiceField(
        choices=REVEALABLE_FIELDS,
        widget=forms.CheckboxSelectMultiple,
        help_text="Ask only for what the purpose needs: each value you tick is named in the audit trail.",
    )
    field_order = ["reveal", "purpose", "reason"]

    def __init__(self, *args, identity_captured: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if not identity_captured:
            self.fields["reveal"].choices = [(n, label) for n, label in REVEALABLE_FIELDS if n not in IDENTITY_FIELDS]
