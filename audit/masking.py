"""Masking of people's data for display: model-change logs keep nothing, staff pages a recognisable hint.

django-auditlog's default keeps half of a masked value visible; for an email
or a name that is identification. Ours keeps nothing.

Staff pages (every admin list, detail and search result, for every role) show
an email only through `email_masked`: one initial of the mailbox and of the
domain, plus the top-level domain. That tells a customer's row from a staff
member's at a glance, yet neither names anyone nor lets a list be harvested.
Seeing the address in clear goes through an unmask with purpose and reason,
recorded as `pii.read`.
"""

from __future__ import annotations

FULL_MASK = "****"
HIDDEN = "•••"  # fixed width: a mask must not leak the length of what it hides
UNKNOWN_EMAIL = "••••"


def mask_entirely(value: object) -> str:
    return FULL_MASK


def email_masked(email: str | None) -> str:
    """`alice@demo.fintech.example` -> `a•••@d•••.example`; anything that is not an address -> `••••`."""
    local, at, domain = (email or "").strip().rpartition("@")
    if not at or not local or not domain:
        return UNKNOWN_EMAIL
    *_, top_level = domain.rpartition(".")
    suffix = f".{top_level}" if "." in domain and top_level else ""
    return f"{local[0]}{HIDDEN}@{domain[0]}{HIDDEN}{suffix}"
