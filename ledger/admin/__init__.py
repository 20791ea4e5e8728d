"""Staff views of the ledger: money rows (read-only), limits and rules (edited in major units), review cases."""

from ledger.admin import limits, money, reviews

__all__ = ["limits", "money", "reviews"]
