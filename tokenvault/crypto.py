"""Envelope encryption and blind indexes for vaulted values.

Each record gets a fresh 256-bit data key. The value is encrypted with
AES-256-GCM under that key; the data key is wrapped by the key provider under
the current KEK. Both encryptions authenticate the record's associated data
(`tokenvault:<type>:<token>:<field>`), so a ciphertext or a wrapped key copied
onto another record fails authentication instead of decrypting.

Envelope layout (format version 1), all integers big-endian:

    b"TV" | format (1) | len(kek_id) (1) | kek_id | kek_version (4)
          | len(wrapped) (2) | wrapped data key | nonce (12) | ciphertext+tag

Rewrapping replaces only the KEK fields and the wrapped key; the data
ciphertext is untouched, because its associated data does not name the KEK.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tokenvault.exceptions import CiphertextTampered
from tokenvault.keys import DATA_KEY_BYTES, NONCE_BYTES, KeyProvider

MAGIC = b"TV"
FORMAT_VERSION = 1
MAX_PLAINTEXT_BYTES = 256  # card numbers and national ids are short; refuse anything else
_DATA_CONTEXT = b"tokenvault.data.v1"


@dataclass(frozen=True, slots=True)
class Envelope:
    kek_id: str
    kek_version: int
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes

    def to_bytes(self) -> bytes:
        kek_id = self.kek_id.encode("ascii")
        return b"".join([
            MAGIC,
            bytes([FORMAT_VERSION, len(kek_id)]),
            kek_id,
            struct.pack(">IH", self.kek_version, len(self.wrapped_key)),
            self.wrapped_key,
            self.nonce,
            self.ciphertext,
        ])  # fmt: skip

    @classmethod
    def from_bytes(cls, blob: bytes) -> Envelope:
        """Parse an envelope; any malformation is reported as tampering."""
        try:
            blob = bytes(blob)
            if blob[:2] != MAGIC or blob[2] != FORMAT_VERSION:
                raise CiphertextTampered()
            kek_id_length = blob[3]
            position = 4 + kek_id_length
            kek_id = blob[4:position].decode("ascii")
            kek_version, wrapped_length = struct.unpack(">IH", blob[position : position + 6])
            position += 6
            wrapped_key = blob[position : position + wrapped_length]
            position += wrapped_length
            nonce = blob[position : position + NONCE_BYTES]
            ciphertext = blob[position + NONCE_BYTES :]
        except (IndexError, struct.error, UnicodeDecodeError):
            raise CiphertextTampered() from None
        if len(wrapped_key) != wrapped_length or len(nonce) != NONCE_BYTES or len(ciphertext) < 16:
            raise CiphertextTampered()
        return cls(kek_id, kek_version, wrapped_key, nonce, ciphertext)


def record_aad(*, token_type: str, token: str, field: str) -> bytes:
    """Associated data binding a ciphertext to one record and one field."""
    for part in (token_type, token, field):
        if not part or ":" in part:
            raise ValueError("associated data parts must be non-empty and free of ':'")
    return f"tokenvault:{token_type}:{token}:{field}".encode("ascii")


def _data_aad(aad: bytes) -> bytes:
    return _DATA_CONTEXT + b"\0" + aad


def envelope_seal(
    *, plaintext: bytes, aad: bytes, provider: KeyProvider, max_plaintext_bytes: int = MAX_PLAINTEXT_BYTES
) -> bytes:
    """Encrypt `plaintext` under a fresh data key wrapped by the current KEK.

    `max_plaintext_bytes`: vaulted values are short; encrypted model fields
    (tokenvault/fields.py) allow longer ones, such as a postal address.
    """
    if len(plaintext) > max_plaintext_bytes:
        raise ValueError("value too long for the vault")
    data_key = AESGCM.generate_key(bit_length=DATA_KEY_BYTES * 8)
    nonce = secrets.token_bytes(NONCE_BYTES)
    ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, _data_aad(aad))
    kek_id, kek_version = provider.current_kek()
    wrapped_key = provider.wrap(kek_id, kek_version, data_key, aad)
    return Envelope(kek_id, kek_version, wrapped_key, nonce, ciphertext).to_bytes()


def envelope_open(*, blob: bytes, aad: bytes, provider: KeyProvider) -> bytes:
    """Decrypt an envelope; `CiphertextTampered` if it was altered or belongs to another record/field."""
    envelope = Envelope.from_bytes(blob)
    data_key = provider.unwrap(envelope.kek_id, envelope.kek_version, envelope.wrapped_key, aad)
    try:
        return AESGCM(data_key).decrypt(envelope.nonce, envelope.ciphertext, _data_aad(aad))
    except InvalidTag:
        raise CiphertextTampered() from None


def envelope_rewrap(*, blob: bytes, aad: bytes, provider: KeyProvider) -> bytes:
    """The same envelope with its data key rewrapped under the current KEK (no-op if already current)."""
    envelope = Envelope.from_bytes(blob)
    kek_id, kek_version = provider.current_kek()
    if (envelope.kek_id, envelope.kek_version) == (kek_id, kek_version):
        return bytes(blob)
    data_key = provider.unwrap(envelope.kek_id, envelope.kek_version, envelope.wrapped_key, aad)
    wrapped_key = provider.wrap(kek_id, kek_version, data_key, aad)
    return Envelope(kek_id, kek_version, wrapped_key, envelope.nonce, envelope.ciphertext).to_bytes()


def blind_index(*, token_type: str, normalized_value: str, provider: KeyProvider) -> tuple[int, str]:
    """HMAC-SHA256 of the normalized value under the blind-index key: (key version, hex digest).

    The token type is part of the message so a card number and a national id
    with the same characters never share an index entry.
    """
    message = b"tokenvault.blind-index.v1\0" + token_type.encode() + b"\0" + normalized_value.encode()
    version, digest = provider.mac(message)
    if len(digest) != hashlib.sha256().digest_size:
        raise ValueError("blind index must be HMAC-SHA256")
    return version, digest.hex()
