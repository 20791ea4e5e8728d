"""Customer emails: rendered and addressed at delivery time, so no address ever sits in the outbox."""

from __future__ import annotations

from django.core.mail import send_mail

from accounts.models import User
from ledger.currencies import format_amount
from ledger.models import Transfer

DIRECTION_LINES = {
    "debit": "Money left your account.",
    "credit": "Money arrived in your account.",
    "internal": "Money moved between your own accounts.",
}


class EmailRefused(Exception):
    """This email cannot be sent, now or later (no address): a permanent failure."""


def transfer_posted_email_send(*, recipient: User, transfer: Transfer, direction: str) -> None:
    """One plain-text email: amount and currency, what it did, the reference and the transfer id.

    Nothing about the other party (no name, no account number); the reference
    is the transfer's own text, read here from the immutable transfer row.
    """
    if not recipient.email:
        raise EmailRefused("recipient has no email address")
    amount = f"{format_amount(transfer.amount_minor, transfer.currency)} {transfer.currency}"
    subject = f"Transfer of {amount} posted"
    body = "\n".join([
        f"Transfer of {amount} posted.",
        DIRECTION_LINES.get(direction, ""),
        "",
        f"Reference: {transfer.reference or '-'}",
        f"Transfer id: {transfer.public_id}",
        "",
    ])  # fmt: skip
    sent = send_mail(subject, body, None, [recipient.email], fail_silently=False)
    if sent != 1:
        raise RuntimeError(f"the mail backend accepted {sent} messages instead of 1")


def alert_email_send(*, recipient: User, payload: dict) -> None:
    """A staff alert: what kind, what about (ids only), and where to look. No customer data."""
    if not recipient.email:
        raise EmailRefused("recipient has no email address")
    kind = str(payload.get("kind", "alert"))[:64]
    body = "\n".join([
        str(payload.get("summary", ""))[:300],
        "",
        f"About: {payload.get('object_type', '')} {payload.get('object', '')}",
        "Open the admin to act on it.",
        "",
    ])  # fmt: skip
    sent = send_mail(f"[fintech alert] {kind}", body, None, [recipient.email], fail_silently=False)
    if sent != 1:
        raise RuntimeError(f"the mail backend accepted {sent} messages instead of 1")
