"""KEK retirement waits out a grace period after the version stopped being current (ADR 0011).

A tokenize that read the current version just before a rotation wraps under
it and inserts later; the SHARE lock of `kek_retire` cannot see it yet. Time is
never slept: the ring's record of when a version became current is rewritten.
"""

from __future__ import annotations

import os

import pytest

from audit.models import AuditEvent
from tokenvault.checks import vault_kek_retire_grace_check
from tokenvault.exceptions import KekRetireTooSoon
from tokenvault.keys import LocalFileKeyProvider
from tokenvault.services import kek_retire, kek_rotate
from tokenvault.tests.conftest import VAULT_DATABASES, backdate_rotation

pytestmark = pytest.mark.django_db(databases=VAULT_DATABASES)


def test_rotation_records_when_the_new_version_became_current(tmp_path):
    provider = LocalFileKeyProvider(tmp_path / "kek", generate=True)
    provider.current_kek()
    assert provider.superseded_at(1) is None

    provider.rotate()

    record = tmp_path / "kek" / "kek-v000002.since"
    assert oct(record.stat().st_mode & 0o777) == "0o600"
    assert provider.superseded_at(1) == float(record.read_text())
    assert provider.superseded_at(2) is None


def test_a_ring_without_the_record_falls_back_to_the_next_key_files_time(tmp_path):
    # Rings rotated before the record existed: the successor's key file time stands in.
    provider = LocalFileKeyProvider(tmp_path / "kek", generate=True)
    provider.current_kek()
    provider.rotate()
    (tmp_path / "kek" / "kek-v000002.since").unlink()
    os.utime(tmp_path / "kek" / "kek-v000002.key", (1_000_000, 1_000_000))

    assert provider.superseded_at(1) == 1_000_000


def test_retire_right_after_rotation_is_refused_with_a_stable_code(provider, actor, settings):
    settings.VAULT_KEK_RETIRE_GRACE_SECONDS = 3600
    provider.current_kek()
    kek_rotate(actor=actor)

    with pytest.raises(KekRetireTooSoon) as refused:
        kek_retire(version=1, actor=actor)

    assert refused.value.code == "vault_kek_retire_too_soon"
    assert refused.value.status == 409
    assert 3500 < refused.value.extra["retry_after_seconds"] <= 3601
    assert provider.versions() == [1, 2]
    assert not AuditEvent.objects.filter(event_type="vault.kek_retired").exists()


@pytest.mark.parametrize(("age", "retired"), [(3599, False), (3601, True)])
def test_retire_is_allowed_only_once_the_grace_has_passed(provider, actor, settings, age, retired):
    settings.VAULT_KEK_RETIRE_GRACE_SECONDS = 3600
    provider.current_kek()
    kek_rotate(actor=actor)
    backdate_rotation(provider.directory, 2, age)

    if retired:
        kek_retire(version=1, actor=actor)
        assert provider.versions() == [2]
    else:
        with pytest.raises(KekRetireTooSoon):
            kek_retire(version=1, actor=actor)
        assert provider.versions() == [1, 2]


def test_the_grace_counts_from_the_next_version_not_the_latest(provider, actor, settings):
    # v1 stopped being current when v2 did, long ago; a fresh v3 does not hold v1 back, but holds v2.
    settings.VAULT_KEK_RETIRE_GRACE_SECONDS = 3600
    provider.current_kek()
    kek_rotate(actor=actor)
    backdate_rotation(provider.directory, 2, 7200)
    kek_rotate(actor=actor)

    kek_retire(version=1, actor=actor)
    with pytest.raises(KekRetireTooSoon):
        kek_retire(version=2, actor=actor)
    assert provider.versions() == [2, 3]


def test_the_grace_cannot_be_configured_away(settings):
    settings.VAULT_KEK_RETIRE_GRACE_SECONDS = 0
    assert [error.id for error in vault_kek_retire_grace_check(None)] == ["tokenvault.E020"]
    settings.VAULT_KEK_RETIRE_GRACE_SECONDS = 3600
    assert vault_kek_retire_grace_check(None) == []
