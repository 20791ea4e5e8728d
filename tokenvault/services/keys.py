"""Key lifecycle of the vault's records: rewrap under the current KEK, rotate, retire.

The two-database rule of every vault service is in `tokenvault/services/__init__.py`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connections, transaction

from audit.models import AuditEvent
from audit.services.events import Actor, audit_event_record
from tokenvault.crypto import envelope_rewrap, record_aad
from tokenvault.exceptions import KekInUse, KekIsCurrent, KekRetireTooSoon
from tokenvault.keys import KeyProvider, vault_key_provider
from tokenvault.models import VaultRecord
from tokenvault.services.records import AUDIT, FIELDS, VAULT

MAX_REWRAP_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class RewrapProgress:
    last_id: int | None  # resume after this id; None when nothing was left to rewrap
    rewrapped: int


def vault_rewrap(
    *, batch_size: int, after_id: int | None = None, actor: Actor | None = None, provider: KeyProvider | None = None
) -> RewrapProgress:
    """Rewrap, under the current KEK, the data keys of up to `batch_size` records with id > `after_id`.

    Only the wrapped key changes; values are never decrypted. Rows are
    locked in id order for the batch. Resumable: pass the returned `last_id`
    as `after_id` until it comes back None.
    """
    if not 1 <= batch_size <= MAX_REWRAP_BATCH:
        raise ValueError(f"batch_size must be between 1 and {MAX_REWRAP_BATCH}")
    provider = provider or vault_key_provider()
    actor = actor or Actor.system("vault_rewrap")
    kek_id, kek_version = provider.current_kek()
    with transaction.atomic(using=VAULT):
        records = list(
            VaultRecord.objects.using(VAULT)
            .select_for_update()
            .filter(shredded_at__isnull=True, id__gt=after_id or 0)
            .exclude(kek_id=kek_id, kek_version=kek_version)
            .order_by("id")[:batch_size]
        )
        if not records:
            return RewrapProgress(last_id=None, rewrapped=0)
        for record in records:
            aad = record_aad(token_type=record.token_type, token=record.token, field=FIELDS[record.token_type])
            record.ciphertext = envelope_rewrap(blob=bytes(record.ciphertext), aad=aad, provider=provider)
            record.kek_id, record.kek_version = kek_id, kek_version
        with transaction.atomic(using=AUDIT):
            audit_event_record(
                event_type="vault.rewrapped",
                outcome=AuditEvent.Outcome.SUCCESS,
                actor=actor,
                object_type="vault_kek",
                object_id=f"{kek_id}:{kek_version}",
                payload={"count": len(records), "first_id": records[0].id, "last_id": records[-1].id},
            )
            VaultRecord.objects.using(VAULT).bulk_update(records, ["ciphertext", "kek_id", "kek_version"])
    return RewrapProgress(last_id=records[-1].id, rewrapped=len(records))


def vault_rewrap_pending_count(*, provider: KeyProvider | None = None) -> int:
    """How many live records are not yet under the current KEK."""
    kek_id, kek_version = (provider or vault_key_provider()).current_kek()
    return (
        VaultRecord.objects.using(VAULT)
        .filter(shredded_at__isnull=True)
        .exclude(kek_id=kek_id, kek_version=kek_version)
        .count()
    )


# What a rotation is recorded as, per key ring (the field ring's retire is `fields.kek_retired` / `field_kek`).
_ROTATION_RECORDS = {"vault": ("vault.kek_rotated", "vault_kek"), "fields": ("fields.kek_rotated", "field_kek")}


def kek_rotate(*, actor: Actor, provider: KeyProvider | None = None, key_ring: str = "vault") -> int:
    """Create a new KEK version and make it current; existing records keep working until rewrapped."""
    event_type, object_type = _ROTATION_RECORDS[key_ring]
    provider = provider or vault_key_provider()
    with transaction.atomic(using=AUDIT):
        kek_id, previous = provider.current_kek()
        version = provider.rotate()
        audit_event_record(
            event_type=event_type,
            outcome=AuditEvent.Outcome.SUCCESS,
            actor=actor,
            object_type=object_type,
            object_id=f"{kek_id}:{version}",
            payload={"previous_version": previous, "version": version},
        )
    return version


def kek_retire_grace_check(*, provider: KeyProvider, version: int, rewrap_command: str) -> None:
    """Refuse to retire `version` until it stopped being current VAULT_KEK_RETIRE_GRACE_SECONDS ago.

    A writer that read the "current" pointer just before a rotation may still
    seal under the old version after the count of its users reached zero; the
    grace outlasts such a writer. Shared by the vault's and the field key rings.
    """
    superseded_at = provider.superseded_at(version)
    grace = settings.VAULT_KEK_RETIRE_GRACE_SECONDS
    # None: no later version exists, so the version is current or was never made current.
    if superseded_at is None:
        raise KekRetireTooSoon(f"version {version} has not been superseded by a later version")
    remaining = superseded_at + grace - time.time()
    if remaining > 0:
        raise KekRetireTooSoon(
            f"version {version} stopped being current less than {grace} seconds ago; "
            f"retry in {int(remaining) + 1} seconds, after another {rewrap_command}",
            extra={"retry_after_seconds": int(remaining) + 1},
        )


def kek_retire_check(*, version: int, provider: KeyProvider | None = None) -> str:
    """Refuse, with `kek_retire`'s own codes, unless `version` could be retired now; returns the KEK id.

    For `vault_retire_key --dry-run`: the same checks without the table lock
    or the destruction, so an operator learns what a retirement would answer
    before asking a second person for the grant. `kek_retire` checks again
    under its lock: this answer is advice, not a reservation.
    """
    kek_id = _kek_retirable(version=version, provider=provider or vault_key_provider())
    _kek_unused_check(kek_id, version)
    return kek_id


def _kek_retirable(*, version: int, provider: KeyProvider) -> str:
    """The KEK id, unless `version` is current or stopped being current too recently (KekIsCurrent, too soon)."""
    kek_id, current = provider.current_kek()
    if version == current:
        raise KekIsCurrent()
    kek_retire_grace_check(provider=provider, version=version, rewrap_command="vault_rewrap")
    return kek_id


def _kek_unused_check(kek_id: str, version: int) -> None:
    in_use = VaultRecord.objects.using(VAULT).filter(kek_id=kek_id, kek_version=version).count()
    if in_use:
        raise KekInUse(f"{in_use} records still use version {version}; run vault_rewrap first")


def kek_retire(*, version: int, actor: Actor, provider: KeyProvider | None = None) -> None:
    """Destroy a KEK version, refusing while any live record is still wrapped under it.

    The table is locked in SHARE mode for the check, so no insert or rewrap can
    slip a record under the version between the count and the destruction.

    The lock cannot see a tokenize that wrapped its data key under this version
    just before the rotation and has not inserted yet (another process, a slow
    request): so the version must also have stopped being current at least
    VAULT_KEK_RETIRE_GRACE_SECONDS ago. There is no bypass; wait, then rewrap
    again and retire (ADR 0011).
    """
    provider = provider or vault_key_provider()
    kek_id = _kek_retirable(version=version, provider=provider)
    with transaction.atomic(using=VAULT):
        with connections[VAULT].cursor() as cursor:
            cursor.execute(f"LOCK TABLE {VaultRecord._meta.db_table} IN SHARE MODE")
        _kek_unused_check(kek_id, version)  # under the lock: no record can slip under the version now
        with transaction.atomic(using=AUDIT):
            audit_event_record(
                event_type="vault.kek_retired",
                outcome=AuditEvent.Outcome.SUCCESS,
                actor=actor,
                object_type="vault_kek",
                object_id=f"{kek_id}:{version}",
            )
            provider.retire(version)
