"""A user's password hash carries a MAC under a key the database does not hold (issue 12, ADR 0016).

The threat: someone holding only the runtime role's database login runs
`UPDATE accounts_user SET password = '<hash of a password they chose>'` and
logs in as that customer (the web login, then OAuth) or staff member (admin,
operator commands), leaving nothing in the trail but an ordinary login.

So `User.password_mac` is an HMAC-SHA256 over (user pk, password hash), under
a key derived from the Django secret with a salt of its own (`salted_hmac`, as
`accounts.oauth.token_macs` does). The model sets it wherever the application
sets a hash (`User.set_password`, `set_unusable_password`, and `User.save` for
a hash assigned directly, Django's hasher upgrade included); it is checked
before any password is compared: by the authentication backend
(`accounts.backends.PasswordMacBackend`, which the web login,
OAuth's login step and operator commands go through) and by
`User.check_password` itself, so a rewritten hash is never compared, nor
upgraded (which would re-MAC it). A failing row is refused like a wrong
password and recorded: log line, metric, audit event `auth.password_mac_invalid`
naming the user by public id, never the hash. The pk binds the MAC to its row:
a hash and MAC copied from an account whose password one knows do not verify
on another. Secrets in `SECRET_KEY_FALLBACKS` still verify, so rotating the
secret locks nobody out.
"""

from __future__ import annotations

import logging

from asgiref.sync import sync_to_async
from django.db import router, transaction
from prometheus_client import Counter

from fintech.macs import row_mac_matches, row_mac_of

logger = logging.getLogger(__name__)
REFUSED = Counter(
    "fintech_password_mac_refused_total", "Password checks refused because the stored hash fails its MAC.", ["lookup"]
)

_SALT = "fintech.accounts.password"


def password_mac(user_id: int, password_hash: str) -> str:
    """The MAC of a user's password hash, under the current secret (fallbacks are tried by row_mac_matches)."""
    return row_mac_of(_SALT, [user_id, password_hash])


def password_mac_valid(user) -> bool:
    """Whether the user's stored MAC is the MAC of their stored hash (under the secret or a fallback)."""
    return user.pk is not None and row_mac_matches(user.password_mac, _SALT, [user.pk, user.password])


def password_mac_verified(user, *, lookup: str, request=None) -> bool:
    """`password_mac_valid`, and if not, say so (log, metric, audit trail). `lookup` names the door."""
    if password_mac_valid(user):
        return True
    _refusal_record(user, lookup=lookup, request=request)
    return False


def _refusal_record(user, *, lookup: str, request) -> None:
    """The hash was written outside the application: whoever knows the password it hashes is not let in."""
    from audit.models import AuditEvent
    from audit.services.events import Actor, audit_event_record

    REFUSED.labels(lookup).inc()
    logger.error(
        "password hash fails its MAC: refused", extra={"user_public_id": str(user.public_id), "lookup": lookup}
    )
    audit_event_record(
        event_type="auth.password_mac_invalid",
        outcome=AuditEvent.Outcome.DENIED,
        actor=Actor(),  # nobody proved who they are
        object_type="accounts.user",
        object_id=str(user.public_id),
        payload={"lookup": lookup},
        request=request,
    )


class PasswordMacMixin:
    """What `accounts.User` does to keep `password_mac` with its hash (the model holds the field).

    `_password_mac_of` is the hash `password_mac` belongs to as far as this
    process knows: the one loaded with it, or one the application set. A hash
    that differs from it was set here and gets a fresh MAC when saved; a hash
    read from the database never does (that would launder a rewrite).
    """

    _password_mac_of: str | None = None

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._password_mac_of = instance.__dict__.get("password")
        return instance

    def refresh_from_db(self, using=None, fields=None, from_queryset=None) -> None:
        super().refresh_from_db(using=using, fields=fields, from_queryset=from_queryset)
        if fields is None or "password" in fields:
            self._password_mac_of = self.__dict__.get("password")

    def _password_mac_refresh(self) -> None:
        if self.pk is not None:  # a new user's MAC is computed once the INSERT gave it its pk (save)
            self.password_mac = password_mac(self.pk, self.password)
            self._password_mac_of = self.password

    def set_password(self, raw_password) -> None:
        super().set_password(raw_password)
        self._password_mac_refresh()

    def set_unusable_password(self) -> None:
        super().set_unusable_password()
        self._password_mac_refresh()

    def check_password(self, raw_password) -> bool:
        """Django's check, refused first if the hash fails its MAC: a rewritten hash is never compared nor upgraded."""
        if self.pk is not None and not password_mac_verified(self, lookup="check_password"):
            return False
        return super().check_password(raw_password)  # its hasher upgrade saves through save(): MAC included

    async def acheck_password(self, raw_password) -> bool:
        if self.pk is not None and not await sync_to_async(password_mac_verified)(self, lookup="check_password"):
            return False
        return await super().acheck_password(raw_password)

    def save(self, *args, **kwargs) -> None:
        update_fields = kwargs.get("update_fields")
        saves_password = "password" in self.__dict__ and (update_fields is None or "password" in update_fields)
        if not saves_password:
            super().save(*args, **kwargs)
            return
        if self.password != self._password_mac_of:
            self._password_mac_refresh()  # a hash the application assigned itself (an invitation's)
        if update_fields is not None and "password_mac" not in update_fields:
            kwargs["update_fields"] = [*update_fields, "password_mac"]
        if self.pk is not None:
            super().save(*args, **kwargs)
            return
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using):
            super().save(*args, **kwargs)
            self._password_mac_refresh()
            type(self)._base_manager.using(using).filter(pk=self.pk).update(password_mac=self.password_mac)
