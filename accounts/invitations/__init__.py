"""Staff invitations (issue 11): a single-use link with which a staff member sets a password and enrols TOTP.

Writes in `services.py`, reads in `selectors.py`, the pages in `views.py`; the
four-eyes kinds that issue invitations live in `accounts.approvals.kinds_staff`.
"""
