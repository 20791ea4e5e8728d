"""Cards on file: the customer's cards, held as vault tokens (issue 6)."""
