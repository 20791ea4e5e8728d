"""The local key provider: files, modes, generation policy, wrap/unwrap, retire."""

from __future__ import annotations

import os
import stat

import pytest
from django.core.exceptions import ImproperlyConfigured

from tokenvault.exceptions import CiphertextTampered, KekIsCurrent, KeyUnavailable
from tokenvault.keys import KeyProvider, LocalFileKeyProvider, vault_key_provider


def test_keys_are_generated_on_first_use_with_private_modes(tmp_path):
    directory = tmp_path / "kek"
    provider = LocalFileKeyProvider(directory, generate=True)

    assert provider.current_kek() == ("local-kek", 1)

    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    key_file = directory / "kek-v000001.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_bytes()) == 32
    assert (directory / "kek-current").read_text().strip() == "1"
    assert isinstance(provider, KeyProvider)


def test_no_key_is_generated_unless_allowed(tmp_path, settings):
    settings.VAULT_KEK_DIR = str(tmp_path / "prod-kek")
    settings.VAULT_KEK_GENERATE = False
    provider = vault_key_provider()

    with pytest.raises(KeyUnavailable):
        provider.current_kek()
    assert not (tmp_path / "prod-kek").exists()

    (tmp_path / "prod-kek").mkdir(mode=0o700)
    with pytest.raises(KeyUnavailable):
        provider.current_kek()
    assert os.listdir(tmp_path / "prod-kek") == []


def test_group_readable_key_directory_is_refused(tmp_path):
    directory = tmp_path / "kek"
    LocalFileKeyProvider(directory, generate=True).current_kek()
    directory.chmod(0o750)
    with pytest.raises(ImproperlyConfigured):
        LocalFileKeyProvider(directory).current_kek()


def test_wrap_unwrap_round_trip_binds_aad_and_version(tmp_path):
    provider = LocalFileKeyProvider(tmp_path / "kek", generate=True)
    kek_id, version = provider.current_kek()
    data_key = os.urandom(32)
    wrapped = provider.wrap(kek_id, version, data_key, b"record-a")

    assert provider.unwrap(kek_id, version, wrapped, b"record-a") == data_key
    with pytest.raises(CiphertextTampered):
        provider.unwrap(kek_id, version, wrapped, b"record-b")
    flipped = bytearray(wrapped)
    flipped[20] ^= 1
    with pytest.raises(CiphertextTampered):
        provider.unwrap(kek_id, version, bytes(flipped), b"record-a")
    new_version = provider.rotate()
    with pytest.raises(CiphertextTampered):
        provider.unwrap(kek_id, new_version, wrapped, b"record-a")


def test_rotate_makes_a_new_current_version_and_retire_destroys_old(tmp_path):
    provider = LocalFileKeyProvider(tmp_path / "kek", generate=True)
    kek_id, first = provider.current_kek()
    wrapped = provider.wrap(kek_id, first, b"k" * 32, b"aad")

    second = provider.rotate()

    assert second == first + 1
    assert provider.current_kek() == (kek_id, second)
    assert provider.versions() == [first, second]
    with pytest.raises(KekIsCurrent):
        provider.retire(second)
    provider.retire(first)
    assert provider.versions() == [second]
    assert not (tmp_path / "kek" / "kek-v000001.key").exists()
    with pytest.raises(KeyUnavailable):
        provider.unwrap(kek_id, first, wrapped, b"aad")
    # A retired number is never reused.
    assert provider.rotate() == second + 1


def test_blind_index_key_is_separate_from_the_kek(tmp_path):
    provider = LocalFileKeyProvider(tmp_path / "kek", generate=True)
    provider.current_kek()
    version, digest = provider.mac(b"message")
    assert version == 1
    assert len(digest) == 32
    index_key = (tmp_path / "kek" / "index-v000001.key").read_bytes()
    kek = (tmp_path / "kek" / "kek-v000001.key").read_bytes()
    assert index_key != kek
    provider.rotate()
    assert provider.mac(b"message") == (version, digest)
