"""Second factor: TOTP authenticator apps, with one-time recovery codes.

The public surface other apps use:

* `user_has_mfa(user)`: does the user have a confirmed authenticator?
* `mark_session_mfa_verified(request)` / `session_mfa_verified_at(request)`:
  when this browser session last proved the second factor (ISO 8601 UTC under
  `"mfa_verified_at"`); the OAuth authorization view stamps tokens with it.

Writes live in `services.py`, reads in `selectors.py`, session state in
`session.py`, QR codes and recovery-code hashing in `provisioning.py`.
"""

from accounts.mfa.selectors import user_has_mfa
from accounts.mfa.session import (
    MFA_VERIFIED_AT_SESSION_KEY,
    mark_session_mfa_verified,
    session_mfa_verified_at,
)

__all__ = [
    "MFA_VERIFIED_AT_SESSION_KEY",
    "mark_session_mfa_verified",
    "session_mfa_verified_at",
    "user_has_mfa",
]
