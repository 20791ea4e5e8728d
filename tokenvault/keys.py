"""Key management for the token vault, shaped like a KMS/HSM API.

The vault never handles a key-encryption key (KEK) directly: it asks a
`KeyProvider` to wrap and unwrap per-record data keys, exactly as it would ask
AWS KMS (`Encrypt`/`Decrypt` with an encryption context), Google Cloud KMS or
a PKCS#11 HSM (`C_WrapKey`/`C_UnwrapKey`). Swapping the local implementation
for a real KMS therefore touches this module only.

`LocalFileKeyProvider` keeps 256-bit keys as files in a directory outside the
repository (mode 0700, files 0600). Two independent key rings live there:

- `kek-vNNNNNN.key`: KEK versions that wrap data keys (AES-256-GCM, random
  96-bit nonce); `kek-current` names the active version.
- `index-vNNNNNN.key`: HMAC-SHA256 keys for blind indexes; `index-current`.
- `kek-vNNNNNN.since`: when that version became current (Unix seconds), so
  retirement can wait out a grace period after the version before it stopped
  being current (`tokenvault.services.kek_retire`).

Keys are generated on first use only when `generate=True` (dev and test,
setting `VAULT_KEK_GENERATE`); production points `VAULT_KEK_DIR` at a
provisioned directory and a missing key is an error, never a new key.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import re
import secrets
import stat
import threading
import time
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from tokenvault.exceptions import CiphertextTampered, KekIsCurrent, KeyUnavailable

KEY_BYTES = 32  # AES-256 and HMAC-SHA256 keys
NONCE_BYTES = 12  # 96-bit GCM nonce, random per wrap
DATA_KEY_BYTES = 32
WRAPPED_KEY_BYTES = NONCE_BYTES + DATA_KEY_BYTES + 16
MAX_VERSION = 999_999
_WRAP_CONTEXT = b"tokenvault.kek.wrap.v1"


@runtime_checkable
class KeyProvider(Protocol):
    """What the vault needs from a KMS. Implementations must be thread-safe.

    Key material never leaves the provider except as the caller's own data key;
    a remote KMS implements `wrap`/`unwrap` as calls and `mac` as GenerateMac.
    """

    def current_kek(self) -> tuple[str, int]:
        """The (kek_id, version) that new data keys are wrapped under.

        Raises `KeyUnavailable` when no KEK exists and none may be generated.
        """
        ...

    def wrap(self, kek_id: str, version: int, data_key: bytes, aad: bytes) -> bytes:
        """Encrypt `data_key` under the KEK version, authenticating `aad` (the encryption context).

        The result is opaque, carries its own nonce, and unwraps only with the
        same kek_id, version and aad.
        """
        ...

    def unwrap(self, kek_id: str, version: int, wrapped: bytes, aad: bytes) -> bytes:
        """Return the data key inside `wrapped`.

        Raises `CiphertextTampered` if `wrapped` or `aad` was altered, and
        `KeyUnavailable` if the version is unknown or retired.
        """
        ...

    def versions(self) -> list[int]:
        """KEK versions that can still unwrap, oldest first."""
        ...

    def rotate(self) -> int:
        """Create a new KEK version and make it current; returns the version. Old versions still unwrap."""
        ...

    def retire(self, version: int) -> None:
        """Destroy a KEK version for good; anything still wrapped under it becomes unreadable.

        Refuses the current version (`KekIsCurrent`). The caller checks that no
        record still needs it (`tokenvault.services.kek_retire`).
        """
        ...

    def superseded_at(self, version: int) -> float | None:
        """Unix time at which `version` stopped being current; None while no later version exists."""
        ...

    def mac(self, message: bytes) -> tuple[int, bytes]:
        """HMAC-SHA256 of `message` under the current blind-index key: (index key version, digest)."""
        ...


class _KeyRing:
    """Numbered 256-bit key files and a `current` pointer in one directory."""

    def __init__(self, directory: Path, name: str, *, generate: bool) -> None:
        self.directory = directory
        self.name = name
        self.generate = generate
        self._pattern = re.compile(rf"^{re.escape(name)}-v(\d{{6}})\.(key|retired)$")
        self._cache: dict[int, bytes] = {}
        self._lock = threading.Lock()

    # --- files ---------------------------------------------------------
    def _key_path(self, version: int) -> Path:
        return self.directory / f"{self.name}-v{version:06d}.key"

    def _tombstone_path(self, version: int) -> Path:
        return self.directory / f"{self.name}-v{version:06d}.retired"

    def _since_path(self, version: int) -> Path:
        return self.directory / f"{self.name}-v{version:06d}.since"

    @property
    def _pointer_path(self) -> Path:
        return self.directory / f"{self.name}-current"

    def _ensure_directory(self) -> None:
        if not self.directory.exists():
            if not self.generate:
                raise KeyUnavailable(f"key directory for {self.name} does not exist")
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = self.directory.stat()
        if not stat.S_ISDIR(info.st_mode):
            raise ImproperlyConfigured(f"vault key path {self.directory} is not a directory")
        if info.st_mode & 0o077:
            # Like ssh: a key directory others can read is treated as compromised.
            raise ImproperlyConfigured(f"vault key directory {self.directory} must be mode 0700")

    def _write_exclusive(self, path: Path, data: bytes) -> bool:
        """Create `path` with `data` (0600) atomically; False if it already exists.

        The content is written to a temporary file first and hard-linked into
        place, so a concurrent reader never sees a half-written key.
        """
        temporary = self.directory / f".{path.name}.{secrets.token_hex(8)}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, path)
            except FileExistsError:
                return False
            return True
        finally:
            temporary.unlink(missing_ok=True)

    def _write_pointer(self, version: int) -> None:
        temporary = self.directory / f".{self._pointer_path.name}.{secrets.token_hex(8)}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{version}\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self._pointer_path)

    def _all_numbers(self) -> set[int]:
        numbers = set()
        for entry in self.directory.iterdir():
            match = self._pattern.match(entry.name)
            if match:
                numbers.add(int(match.group(1)))
        return numbers

    # --- operations ----------------------------------------------------
    def versions(self) -> list[int]:
        self._ensure_directory()
        return sorted(
            int(match.group(1))
            for entry in self.directory.iterdir()
            if (match := self._pattern.match(entry.name)) and match.group(2) == "key"
        )

    def current(self) -> int:
        self._ensure_directory()
        try:
            text = self._pointer_path.read_text().strip()
        except FileNotFoundError:
            if not self.generate:
                raise KeyUnavailable(f"no current {self.name} key") from None
            self._write_exclusive(self._key_path(1), secrets.token_bytes(KEY_BYTES))
            self._write_exclusive(self._pointer_path, b"1\n")
            text = self._pointer_path.read_text().strip()
        if not text.isdigit():
            raise ImproperlyConfigured(f"{self._pointer_path} does not name a key version")
        return int(text)

    def key(self, version: int) -> bytes:
        cached = self._cache.get(version)
        if cached is not None:
            return cached
        self._ensure_directory()
        path = self._key_path(version)
        try:
            info = path.stat()
        except FileNotFoundError:
            raise KeyUnavailable(f"{self.name} version {version} is not available") from None
        if info.st_mode & 0o077:
            raise ImproperlyConfigured(f"vault key file {path} must be mode 0600")
        material = path.read_bytes()
        if len(material) != KEY_BYTES:
            raise ImproperlyConfigured(f"vault key file {path} does not hold a 256-bit key")
        with self._lock:
            self._cache[version] = material
        return material

    def rotate(self) -> int:
        self.current()  # creates version 1 first when generating
        for _attempt in range(10):
            version = max(self._all_numbers(), default=0) + 1
            if version > MAX_VERSION:
                raise ImproperlyConfigured(f"{self.name} ran out of version numbers")
            if self._write_exclusive(self._key_path(version), secrets.token_bytes(KEY_BYTES)):
                self._write_pointer(version)
                # Written after the switch, so the recorded time is never earlier than the switch.
                self._write_exclusive(self._since_path(version), f"{time.time():.0f}\n".encode())
                return version
        raise KeyUnavailable(f"could not create a new {self.name} version")

    def superseded_at(self, version: int) -> float | None:
        """When `version` stopped being current: when the first later version became current.

        Read from that version's `.since` record. A ring from before the record
        existed (or a crash between the pointer switch and the record) falls back
        to the later version's key file (or tombstone) modification time.
        """
        self._ensure_directory()
        later = sorted(number for number in self._all_numbers() if number > version)
        if not later:
            return None
        successor = later[0]
        try:
            text = self._since_path(successor).read_text().strip()
        except FileNotFoundError:
            text = ""
        if text.isdigit():
            return float(text)
        for path in (self._key_path(successor), self._tombstone_path(successor)):
            try:
                return path.stat().st_mtime
            except FileNotFoundError:
                continue
        return None

    def retire(self, version: int) -> None:
        if version == self.current():
            raise KekIsCurrent()
        path = self._key_path(version)
        if not path.exists():
            raise KeyUnavailable(f"{self.name} version {version} is not available")
        # A tombstone keeps the number from ever being reused for a new key.
        self._write_exclusive(self._tombstone_path(version), b"")
        # Best effort: overwriting in place does not defeat SSD wear levelling or
        # backups; the point is that this process and this directory forget it.
        with open(path, "r+b") as handle:
            handle.write(b"\0" * KEY_BYTES)
            handle.flush()
            os.fsync(handle.fileno())
        path.unlink()
        with self._lock:
            self._cache.pop(version, None)


class LocalFileKeyProvider:
    """A `KeyProvider` backed by key files; for development, tests and single-host deployments."""

    def __init__(self, directory: Path, *, generate: bool = False, kek_id: str = "local-kek") -> None:
        self.directory = Path(directory)
        self.kek_id = kek_id
        self._kek = _KeyRing(self.directory, "kek", generate=generate)
        self._index = _KeyRing(self.directory, "index", generate=generate)

    def _check_kek_id(self, kek_id: str) -> None:
        if kek_id != self.kek_id:
            raise KeyUnavailable(f"unknown KEK id {kek_id!r}")

    @staticmethod
    def _wrap_aad(kek_id: str, version: int, aad: bytes) -> bytes:
        # The KEK's identity is authenticated too, so a wrapped key cannot be
        # relabelled as belonging to another KEK version.
        return b"\0".join([_WRAP_CONTEXT, kek_id.encode(), str(version).encode(), aad])

    def current_kek(self) -> tuple[str, int]:
        return self.kek_id, self._kek.current()

    def wrap(self, kek_id: str, version: int, data_key: bytes, aad: bytes) -> bytes:
        self._check_kek_id(kek_id)
        if len(data_key) != DATA_KEY_BYTES:
            raise ValueError("data keys are 256 bits")
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + AESGCM(self._kek.key(version)).encrypt(nonce, data_key, self._wrap_aad(kek_id, version, aad))

    def unwrap(self, kek_id: str, version: int, wrapped: bytes, aad: bytes) -> bytes:
        self._check_kek_id(kek_id)
        if len(wrapped) != WRAPPED_KEY_BYTES:
            raise CiphertextTampered()
        nonce, body = wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:]
        try:
            return AESGCM(self._kek.key(version)).decrypt(nonce, body, self._wrap_aad(kek_id, version, aad))
        except InvalidTag:
            raise CiphertextTampered() from None

    def versions(self) -> list[int]:
        return self._kek.versions()

    def rotate(self) -> int:
        return self._kek.rotate()

    def retire(self, version: int) -> None:
        self._kek.retire(version)

    def superseded_at(self, version: int) -> float | None:
        return self._kek.superseded_at(version)

    def mac(self, message: bytes) -> tuple[int, bytes]:
        version = self._index.current()
        return version, hmac.new(self._index.key(version), message, hashlib.sha256).digest()


def default_key_directory() -> Path:
    from fintech.settings.env import VAR_DIR

    return Path(VAR_DIR) / "keys" / "vault-kek"


def vault_key_provider() -> KeyProvider:
    """The provider configured by settings `VAULT_KEK_DIR` and `VAULT_KEK_GENERATE` (default: never generate)."""
    directory = getattr(settings, "VAULT_KEK_DIR", None) or default_key_directory()
    generate = bool(getattr(settings, "VAULT_KEK_GENERATE", False))
    return local_key_provider(str(directory), generate)


@functools.lru_cache(maxsize=8)
def local_key_provider(directory: str, generate: bool, kek_id: str = "local-kek") -> LocalFileKeyProvider:
    """One provider per key directory and process, so its rings' caches and locks are shared (vault and field rings)."""
    return LocalFileKeyProvider(Path(directory), generate=generate, kek_id=kek_id)
