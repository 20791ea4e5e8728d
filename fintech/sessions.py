"""Web sessions whose database rows cannot be used as cookies (issue 12).

Django's database engine keys `django_session` by the session key itself, the
very value of the browser's cookie: anyone who can read the table (the web
process's own login, `fintech_app`, is enough) can replay a live row's key as
a cookie and be that person, past their second factor. This engine keeps the
cookie as it is (the raw random key) and stores, as the primary key, only
HMAC-SHA256(SECRET_KEY, key) under a salt of its own. The database does not
hold SECRET_KEY, so from a row one can neither get the cookie back nor make a
cookie that hashes to it; a row's key sent as a cookie is hashed again, finds
nothing and starts an empty, anonymous session.

The hex digest is cut to 40 characters (160 bits) to fit Django's own
`session_key varchar(40)` column: no migration, no new table to grant, and the
stock `Session` model, `clearsessions` and code that walks `Session.objects`
(decoding `session_data` to find a user's sessions) keep working unchanged.
160 bits of HMAC output is far beyond guessing or forging.

Hashing the key alone would leave a swap: an insider who is also a customer
holds a cookie of their own, finds its row by decoding `session_data` (signed,
not encrypted) and copies a staff member's `session_data` into it, or renames
the staff member's row to their own row's key. So the data also carries the
row's key (`SESSION_ROW_BINDING`), inside Django's signature: a row whose data
names another key loads as an empty session. `Session.get_decoded()` still
reads every row (the extra entry is ignored by whoever looks for a user).

Keys hashed under a secret listed in SECRET_KEY_FALLBACKS are still found,
like Django's signed session data and session auth hash, and the row is
re-keyed under the current secret when it is read. Once a secret leaves the
fallbacks, the sessions stored under it are lost (their people log in again).
Switching to this engine likewise ends every session stored by the stock one.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.backends import db
from django.db import IntegrityError, router, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

SESSION_KEY_HASH_SALT = "fintech.sessions.SessionStore.session_key"
STORED_KEY_LENGTH = 40  # django_session.session_key is varchar(40)
SESSION_ROW_BINDING = "_fintech_session_row"  # in the signed data: the key of the row it was written for


def session_key_stored(session_key: str, secret: str | bytes | None = None) -> str:
    """The primary key under which the session whose cookie is `session_key` is stored."""
    return salted_hmac(SESSION_KEY_HASH_SALT, session_key, secret=secret, algorithm="sha256").hexdigest()[
        :STORED_KEY_LENGTH
    ]


def session_keys_stored(session_key: str) -> list[str]:
    """Its primary key under SECRET_KEY, then under each fallback secret (a rotation in progress)."""
    keys: list[str] = []
    for secret in (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS):
        key = session_key_stored(session_key, secret)
        if key not in keys:
            keys.append(key)
    return keys


class SessionStore(db.SessionStore):
    """The database session store, with a keyed hash of the session key as the row's primary key."""

    def _get_session_from_db(self):
        if self.session_key is None:
            return None
        keys = session_keys_stored(self.session_key)
        found = {
            row.session_key: row
            for row in self.model.objects.filter(session_key__in=keys, expire_date__gt=timezone.now())
        }
        for key in keys:
            row = found.get(key)
            if row is None:
                continue
            if key != keys[0]:
                self._rekey(row, keys[0])
            return row
        self._session_key = None
        return None

    def _rekey(self, row, current: str) -> None:
        """Move a row stored under a fallback secret's hash to the current secret's, so saves find it."""
        using = router.db_for_write(self.model, instance=row)
        try:
            with transaction.atomic(using=using):
                self.model.objects.using(using).filter(session_key=row.session_key).update(session_key=current)
        except IntegrityError:  # already there: a concurrent request re-keyed it
            pass
        row.session_key = current

    async def _aget_session_from_db(self):
        return await sync_to_async(self._get_session_from_db)()

    def load(self):
        row = self._get_session_from_db()
        if row is None:
            return {}
        data = self.decode(row.session_data)
        if data.pop(SESSION_ROW_BINDING, None) not in session_keys_stored(self.session_key):
            self._session_key = None  # another row's data, copied or renamed here: not this cookie's session
            return {}
        return data

    async def aload(self):
        return await sync_to_async(self.load)()

    def exists(self, session_key):
        return self.model.objects.filter(session_key__in=session_keys_stored(session_key)).exists()

    async def aexists(self, session_key):
        return await self.model.objects.filter(session_key__in=session_keys_stored(session_key)).aexists()

    def create_model_instance(self, data):
        stored = session_key_stored(self._get_or_create_session_key())
        return self.model(
            session_key=stored,
            session_data=self.encode({**data, SESSION_ROW_BINDING: stored}),
            expire_date=self.get_expiry_date(),
        )

    async def acreate_model_instance(self, data):
        stored = session_key_stored(await self._aget_or_create_session_key())
        return self.model(
            session_key=stored,
            session_data=self.encode({**data, SESSION_ROW_BINDING: stored}),
            expire_date=await self.aget_expiry_date(),
        )

    def delete(self, session_key=None):
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        self.model.objects.filter(session_key__in=session_keys_stored(session_key)).delete()

    async def adelete(self, session_key=None):
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        await self.model.objects.filter(session_key__in=session_keys_stored(session_key)).adelete()
