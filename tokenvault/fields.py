"""Encrypted model fields for PII that must stay with its row in the main database (ADR 0013).

Each value is an AES-256-GCM envelope (`tokenvault.crypto`): a fresh data key
per value, wrapped by a key-encryption key from a `KeyProvider`. The provider
is NOT the vault's: field keys live in their own directory (`FIELD_KEK_DIR`,
KEK id `field-kek`) because the API processes hold them, while the vault's
KEKs stay in the vault role.

Associated data binds every ciphertext to (table, column, row identity). The
row identity cannot be the primary key (unknown before INSERT), so each field
names a stable attribute that exists before the first save and never changes,
`bound_to="user.public_id"` for customer profiles: a blob copied onto another
customer's row, or into another column, fails authentication. Binding to the
owner (rather than a per-row random key) also defeats re-pointing a profile
row at another user: its blobs would then name the wrong owner.

The Python attribute never holds a clear value one could print: it holds a
`Sealed`, whose str/repr/format are a fixed mask, which cannot be pickled
while it still carries clear bytes, and which has no method to open it.
Assigning a clear value wraps it at once; `save()` encrypts it (`pre_save`,
which sees the instance and so the row identity). Only `field_open` decrypts,
and only `accounts.selectors.customer_pii_read` calls it (it audits the
read). `QuerySet.update()` and lookups other than `isnull` are refused: they
would bypass the row binding or compare ciphertexts that never match.
"""

from __future__ import annotations

import datetime
import json
import operator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core import checks, exceptions
from django.db import models
from django.db.models.query_utils import DeferredAttribute

from tokenvault.crypto import Envelope, blind_index, envelope_open, envelope_rewrap, envelope_seal
from tokenvault.keys import KeyProvider, local_key_provider

FIELD_KEK_ID = "field-kek"
_AAD_CONTEXT = "fields.v1"
DEFAULT_MAX_PLAINTEXT_BYTES = 1024
MASK = "Sealed(****)"


# --- keys -----------------------------------------------------------------------------------


def default_field_key_directory() -> Path:
    from fintech.settings.env import VAR_DIR

    return Path(VAR_DIR) / "keys" / "field-kek"


def field_key_provider() -> KeyProvider:
    """The field key ring: settings `FIELD_KEK_DIR` and `FIELD_KEK_GENERATE` (default: never generate)."""
    directory = getattr(settings, "FIELD_KEK_DIR", None) or default_field_key_directory()
    generate = bool(getattr(settings, "FIELD_KEK_GENERATE", False))
    return local_key_provider(str(directory), generate, FIELD_KEK_ID)


@checks.register(checks.Tags.security, deploy=True)
def field_key_settings_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Production names the field key directory, outside the repository, and never generates keys.

    A role whose settings do not mention FIELD_KEK_DIR at all (the vault role)
    holds no field keys and is not checked: it must never decrypt PII columns.
    """
    errors: list[checks.CheckMessage] = []
    if not hasattr(settings, "FIELD_KEK_DIR") and not getattr(settings, "FIELD_KEK_GENERATE", False):
        return errors
    if getattr(settings, "FIELD_KEK_GENERATE", False):
        errors.append(checks.Error("FIELD_KEK_GENERATE is on: a missing key would be replaced.", id="tokenvault.E011"))
    directory = getattr(settings, "FIELD_KEK_DIR", None)
    if not directory:
        errors.append(checks.Error("FIELD_KEK_DIR is not set.", id="tokenvault.E012"))
    elif Path(directory).resolve().is_relative_to(Path(settings.BASE_DIR).resolve()):
        errors.append(checks.Error("FIELD_KEK_DIR must be outside the repository.", id="tokenvault.E013"))
    return errors


def field_blind_index(*, kind: str, normalized_value: str, provider: KeyProvider | None = None) -> str:
    """HMAC-SHA256 (hex) of an already normalised value under the field ring's own index key.

    `kind` (e.g. "phone") separates index spaces. Normalise before calling:
    "+44 20 7946 0958" and "+442079460958" must give one index.
    """
    _version, digest = blind_index(
        token_type=f"field.{kind}", normalized_value=normalized_value, provider=provider or field_key_provider()
    )
    return digest


# --- the attribute value --------------------------------------------------------------------


class Sealed:
    """One encrypted PII value as a model attribute; prints as a mask, opens only via `field_open`.

    Holds either the stored envelope (`blob`) or, between assignment and
    `save()`, the encoded clear bytes waiting to be sealed.
    """

    __slots__ = ("_blob", "_pending")

    def __init__(self, *, blob: bytes | None = None, pending: bytes | None = None) -> None:
        if (blob is None) == (pending is None):
            raise ValueError("a Sealed holds either an envelope or a pending clear value")
        self._blob = bytes(blob) if blob is not None else None
        self._pending = pending

    @property
    def is_pending(self) -> bool:
        return self._pending is not None

    @property
    def blob(self) -> bytes:
        if self._blob is None:
            raise ValueError("this value is not sealed yet: save the model first")
        return self._blob

    def __repr__(self) -> str:
        return MASK

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        # Envelopes are randomised: equal clear values never compare equal, and
        # clear values are not compared here at all (that would be an oracle).
        if not isinstance(other, Sealed):
            return NotImplemented
        return self._blob is not None and self._blob == other._blob

    def __hash__(self) -> int:
        return hash(self._blob) if self._blob is not None else id(self)

    def __reduce__(self):
        if self._pending is not None:
            raise TypeError("a Sealed value with clear contents cannot be pickled; save it first")
        return (_sealed_from_blob, (self._blob,))


def _sealed_from_blob(blob: bytes) -> Sealed:
    return Sealed(blob=blob)


class _SealedAttribute(DeferredAttribute):
    """Wraps whatever is assigned, so the instance dict never holds a clear value."""

    def __set__(self, instance, value) -> None:
        instance.__dict__[self.field.attname] = self.field.to_sealed(value)


# --- the fields -----------------------------------------------------------------------------


class EncryptedField(models.BinaryField):
    """Base of the encrypted field types: a bytea column holding one envelope, or NULL.

    Subclasses define `encode` (Python value -> bytes) and `decode`.
    """

    descriptor_class = _SealedAttribute
    empty_values = [None]

    def __init__(self, *args, bound_to: str = "", max_plaintext_bytes: int = DEFAULT_MAX_PLAINTEXT_BYTES, **kwargs):
        self.bound_to = bound_to
        self.max_plaintext_bytes = max_plaintext_bytes
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def check(self, **kwargs) -> list[checks.CheckMessage]:
        errors = super().check(**kwargs)
        if not self.bound_to or self.bound_to in ("pk", "id"):
            errors.append(
                checks.Error(
                    "An encrypted field needs bound_to: a stable attribute known before INSERT (not the pk).",
                    obj=self,
                    id="tokenvault.E010",
                )
            )
        return errors

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["bound_to"] = self.bound_to
        if self.max_plaintext_bytes != DEFAULT_MAX_PLAINTEXT_BYTES:
            kwargs["max_plaintext_bytes"] = self.max_plaintext_bytes
        if kwargs.get("editable") is False:
            kwargs.pop("editable")
        return name, path, args, kwargs

    # --- encoding, per type ---------------------------------------------------------------
    def encode(self, value: Any) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def decode(self, data: bytes) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- Python side ------------------------------------------------------------------------
    def to_sealed(self, value: Any) -> Sealed | None:
        if value is None or isinstance(value, Sealed):
            return value
        if isinstance(value, (bytes, memoryview, bytearray)):
            return Sealed(blob=bytes(value))  # an envelope, from the database
        encoded = self.encode(value)
        if len(encoded) > self.max_plaintext_bytes:
            raise exceptions.ValidationError(f"{self.name} is too long", code="too_long")
        return Sealed(pending=encoded)

    def from_db_value(self, value, expression, connection):
        return None if value is None else Sealed(blob=bytes(value))

    def to_python(self, value):
        return self.to_sealed(value)

    def value_to_string(self, obj) -> str:
        import base64

        value = self.value_from_object(obj)
        return "" if value is None else base64.b64encode(value.blob).decode("ascii")

    # --- database side ----------------------------------------------------------------------
    def aad(self, instance: models.Model) -> bytes:
        """Associated data: this table, this column, this row's stable identity."""
        identity = operator.attrgetter(self.bound_to)(instance)
        if identity in (None, ""):
            raise ValueError(f"{self.model.__name__}.{self.bound_to} is empty: cannot bind {self.name}")
        return f"{_AAD_CONTEXT}:{self.model._meta.db_table}:{self.column}:{identity}".encode()

    def pre_save(self, model_instance, add):
        value = getattr(model_instance, self.attname)
        if isinstance(value, Sealed) and value.is_pending:
            blob = envelope_seal(
                plaintext=value._pending,
                aad=self.aad(model_instance),
                provider=field_key_provider(),
                max_plaintext_bytes=self.max_plaintext_bytes,
            )
            value = Sealed(blob=blob)
            model_instance.__dict__[self.attname] = value  # the clear bytes are dropped
        return value

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None:
            return None
        if not isinstance(value, Sealed) or value.is_pending:
            # Only save() knows the row identity the ciphertext must be bound to.
            raise ValueError(f"{self.name} is encrypted in Model.save(); QuerySet.update() cannot seal it")
        return connection.Database.Binary(value.blob)

    def get_lookup(self, lookup_name):
        # Ciphertexts are randomised: equality, ranges, contains... would silently never match.
        if lookup_name != "isnull":
            return None
        return super().get_lookup(lookup_name)

    def get_transform(self, lookup_name):
        return None


class EncryptedTextField(EncryptedField):
    """A string of at most `max_length` characters."""

    def __init__(self, *args, max_length: int = 200, **kwargs):
        self.text_max_length = max_length
        kwargs.setdefault("max_plaintext_bytes", max_length * 4)  # UTF-8: at most 4 bytes a character
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["max_length"] = self.text_max_length
        if kwargs.get("max_plaintext_bytes") == self.text_max_length * 4:
            kwargs.pop("max_plaintext_bytes")
        return name, path, args, kwargs

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, str):
            raise exceptions.ValidationError(f"{self.name} must be a string", code="invalid")
        if len(value) > self.text_max_length:
            raise exceptions.ValidationError(f"{self.name} is too long", code="too_long")
        return value.encode("utf-8")

    def decode(self, data: bytes) -> str:
        return data.decode("utf-8")


class EncryptedDateField(EncryptedField):
    """A calendar date, stored as its ISO 8601 text."""

    def encode(self, value: Any) -> bytes:
        if isinstance(value, datetime.datetime) or not isinstance(value, datetime.date):
            raise exceptions.ValidationError(f"{self.name} must be a date", code="invalid")
        return value.isoformat().encode("ascii")

    def decode(self, data: bytes) -> datetime.date:
        return datetime.date.fromisoformat(data.decode("ascii"))


class EncryptedIntegerField(EncryptedField):
    """A whole number (e.g. a credit score), stored as its decimal text."""

    def encode(self, value: Any) -> bytes:
        if type(value) is not int:
            raise exceptions.ValidationError(f"{self.name} must be an integer", code="invalid")
        return str(value).encode("ascii")

    def decode(self, data: bytes) -> int:
        return int(data.decode("ascii"))


class EncryptedJSONField(EncryptedField):
    """A JSON object or array (e.g. a postal address), stored as canonical JSON text."""

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, (dict, list)):
            raise exceptions.ValidationError(f"{self.name} must be a JSON object or array", code="invalid")
        try:
            return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError):
            raise exceptions.ValidationError(f"{self.name} must be JSON-serialisable", code="invalid") from None

    def decode(self, data: bytes) -> Any:
        return json.loads(data.decode("utf-8"))


# --- opening and rewrapping -----------------------------------------------------------------


def encrypted_fields(model: type[models.Model]) -> list[EncryptedField]:
    return [field for field in model._meta.concrete_fields if isinstance(field, EncryptedField)]


def field_open(*, instance: models.Model, field_name: str, provider: KeyProvider | None = None) -> Any:
    """The clear value of one encrypted field of a saved instance, or None.

    Raises `CiphertextTampered` (code `vault_ciphertext_tampered`) when the
    envelope was altered or belongs to another row or column. Call it from a
    selector that records the read, never from a view or template.
    """
    field = instance._meta.get_field(field_name)
    if not isinstance(field, EncryptedField):
        raise TypeError(f"{field_name} is not an encrypted field")
    value = getattr(instance, field.attname)
    if value is None:
        return None
    if value.is_pending:
        raise ValueError(f"{field_name} has not been saved yet")
    plaintext = envelope_open(blob=value.blob, aad=field.aad(instance), provider=provider or field_key_provider())
    return field.decode(plaintext)


def field_kek_version(value: Sealed) -> tuple[str, int]:
    """The (kek_id, version) a stored value is wrapped under; no decryption."""
    envelope = Envelope.from_bytes(value.blob)
    return envelope.kek_id, envelope.kek_version


def instance_rewrap(*, instance: models.Model, provider: KeyProvider | None = None) -> list[str]:
    """Rewrap every encrypted field of `instance` under the current field KEK, in memory.

    Returns the attribute names that changed (save them with `update_fields`
    or `bulk_update`); values are never decrypted, only their data keys.
    """
    provider = provider or field_key_provider()
    current = provider.current_kek()
    changed = []
    for field in encrypted_fields(type(instance)):
        value = getattr(instance, field.attname)
        if value is None or field_kek_version(value) == current:
            continue
        blob = envelope_rewrap(blob=value.blob, aad=field.aad(instance), provider=provider)
        instance.__dict__[field.attname] = Sealed(blob=blob)
        changed.append(field.attname)
    return changed
