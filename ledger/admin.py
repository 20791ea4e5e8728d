"""Admin of the ledger: nothing registered yet.

Ledger rows change only through `ledger.services`; a read-only admin comes
with the back-office issue, behind the staff roles of `accounts.roles`.
"""
