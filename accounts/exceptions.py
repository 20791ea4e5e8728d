"""Domain errors of the accounts domain."""

from fintech.problems import DomainError


class EmailAlreadyRegistered(DomainError):
    status = 409
    code = "email_already_registered"
    title = "This email address is already registered"


class PiiFieldUnknown(DomainError):
    status = 400
    code = "pii_field_unknown"
    title = "Unknown personal data field"


class IdentityAlreadyCaptured(DomainError):
    """Identity is captured once; a change is a reviewed process (name change, correction), not an API call."""

    status = 409
    code = "identity_already_captured"
    title = "Your identity is already on file"


class NationalIdInUse(DomainError):
    """Another customer holds this national ID. The detail never says who."""

    status = 409
    code = "identity_national_id_in_use"
    title = "This national ID is already registered to another customer"


class PhoneInUse(DomainError):
    status = 409
    code = "identity_phone_in_use"
    title = "This phone number is already registered to another customer"


class InvalidIdentity(DomainError):
    status = 400
    code = "identity_invalid"
    title = "The identity data is not valid"


class IdentityAttemptsExceeded(DomainError):
    status = 429
    code = "identity_attempts_exceeded"
    title = "Too many identity capture attempts"


class IdentityAttemptsUnavailable(DomainError):
    status = 503
    code = "identity_attempts_unavailable"
    title = "Identity capture is briefly unavailable"
