"""Domain errors of this app: each a `fintech.problems.DomainError` with a stable code."""
