"""Domain errors of the accounts domain."""

from fintech.problems import DomainError


class EmailAlreadyRegistered(DomainError):
    status = 409
    code = "email_already_registered"
    title = "This email address is already registered"
