"""Key rotation for encrypted model fields (tokenvault/fields.py): rotate, rewrap, retire.

The same three steps as the vault's (ADR 0011), over the field key ring
(`FIELD_KEK_DIR`) and every model column of an `EncryptedField` type instead
of the vault table. Rotation reuses `tokenvault.services.kek_rotate` with the
field provider; rewrap and retire need their own walk, because the KEK version
of a field value lives inside its envelope, not in a column of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.db import models, transaction

from audit.models import AuditEvent
from audit.services.events import Actor, audit_event_record
from tokenvault.exceptions import KekInUse, KekIsCurrent
from tokenvault.fields import encrypted_fields, field_kek_version, field_key_provider, instance_rewrap
from tokenvault.keys import KeyProvider
from tokenvault.services.keys import kek_retire_grace_check

MAX_REWRAP_BATCH = 10_000
_SCAN_CHUNK = 2_000


@dataclass(frozen=True, slots=True)
class FieldRewrapProgress:
    last_pk: int | None  # resume after this primary key; None when no row was left to look at
    scanned: int
    rewrapped: int  # rows with at least one value rewrapped


def models_with_encrypted_fields() -> list[type[models.Model]]:
    return [model for model in apps.get_models() if encrypted_fields(model)]


def fields_rewrap(
    *,
    model: type[models.Model],
    batch_size: int,
    after_pk: int | None = None,
    actor: Actor | None = None,
    provider: KeyProvider | None = None,
) -> FieldRewrapProgress:
    """Rewrap, under the current field KEK, the values of up to `batch_size` rows with pk > `after_pk`.

    Rows are locked in pk order for the batch; values are never decrypted.
    Resumable: pass the returned `last_pk` as `after_pk` until it is None.
    """
    if not 1 <= batch_size <= MAX_REWRAP_BATCH:
        raise ValueError(f"batch_size must be between 1 and {MAX_REWRAP_BATCH}")
    provider = provider or field_key_provider()
    actor = actor or Actor.system("fields_rewrap")
    kek_id, kek_version = provider.current_kek()
    queryset = model._default_manager.select_for_update(of=("self",)).filter(pk__gt=after_pk or 0).order_by("pk")
    # Row identities such as "user.public_id" live behind a relation: fetch it with the rows.
    bindings = {field.bound_to for field in encrypted_fields(model) if "." in field.bound_to}
    joins = sorted({binding.rsplit(".", 1)[0].replace(".", "__") for binding in bindings})
    if joins:
        queryset = queryset.select_related(*joins)
    with transaction.atomic():
        rows = list(queryset[:batch_size])
        if not rows:
            return FieldRewrapProgress(last_pk=None, scanned=0, rewrapped=0)
        changed_rows, changed_fields = [], set()
        for row in rows:
            changed = instance_rewrap(instance=row, provider=provider)
            if changed:
                changed_rows.append(row)
                changed_fields.update(changed)
        if changed_rows:
            audit_event_record(
                event_type="fields.rewrapped",
                outcome=AuditEvent.Outcome.SUCCESS,
                actor=actor,
                object_type="field_kek",
                object_id=f"{kek_id}:{kek_version}",
                payload={"model": model._meta.label, "count": len(changed_rows), "last_pk": rows[-1].pk},
            )
            model._default_manager.bulk_update(changed_rows, sorted(changed_fields))
    return FieldRewrapProgress(last_pk=rows[-1].pk, scanned=len(rows), rewrapped=len(changed_rows))


def fields_using_version(*, version: int, provider: KeyProvider | None = None) -> int:
    """How many stored field values are wrapped under KEK `version` (a full scan, chunked)."""
    kek_id, _current = (provider or field_key_provider()).current_kek()
    count = 0
    for model in models_with_encrypted_fields():
        names = [field.attname for field in encrypted_fields(model)]
        rows = model._default_manager.order_by("pk").values_list(*names)
        for values in rows.iterator(chunk_size=_SCAN_CHUNK):
            count += sum(
                1
                for value, field in zip(values, encrypted_fields(model), strict=True)
                if value is not None and field_kek_version(field.to_sealed(value)) == (kek_id, version)
            )
    return count


def field_kek_retire_check(*, version: int, provider: KeyProvider | None = None) -> str:
    """Refuse (with the retire's own codes) unless `version` could be retired now; returns the KEK id.

    Run before asking a second person to approve a retirement, and again when it is applied.
    """
    provider = provider or field_key_provider()
    kek_id, current = provider.current_kek()
    if version == current:
        raise KekIsCurrent()
    kek_retire_grace_check(provider=provider, version=version, rewrap_command="fields_rewrap")
    in_use = fields_using_version(version=version, provider=provider)
    if in_use:
        raise KekInUse(f"{in_use} field values still use version {version}; run fields_rewrap first")
    return kek_id


def field_kek_retire(*, version: int, actor: Actor, provider: KeyProvider | None = None) -> None:
    """Destroy a field KEK version, refusing while any stored value still needs it.

    New values are always sealed under the current version and rewrap only
    moves values to it, so once a non-current version's count is zero it
    stays zero, except for a writer that read the "current" pointer just before
    a rotation, or a rewrap started before it: the retire grace
    (VAULT_KEK_RETIRE_GRACE_SECONDS since the version stopped being current)
    outlasts both.
    """
    provider = provider or field_key_provider()
    kek_id = field_kek_retire_check(version=version, provider=provider)
    with transaction.atomic():
        audit_event_record(
            event_type="fields.kek_retired",
            outcome=AuditEvent.Outcome.SUCCESS,
            actor=actor,
            object_type="field_kek",
            object_id=f"{kek_id}:{version}",
        )
        provider.retire(version)
