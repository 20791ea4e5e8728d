"""The orphan reaper, API-role side: shred vault records no row of ours references (ADR 0012).

A card save tokenizes first and writes its row after (a network call cannot
join our transaction); a crash in between leaves a vault record nobody holds
the token of, and identity capture never shreds a convergent token on
failure. This job is the backstop: the vault knows the records, this role
knows the references, so the reaper

1. asks the vault for live records last issued before `now - grace`, a keyset
   page at a time (tokens and ids only);
2. looks each page's tokens up in every field an app declares as holding
   vault tokens (`AppConfig.vault_token_fields`, e.g. accounts/apps.py);
3. sends the unreferenced ones back to be shredded *on condition* that they
   are still not issued since the same cutoff, re-read by the vault under
   the row lock: a convergent tokenize that hands the token to a new
   customer between steps 1 and 3 keeps it.

Every shred is a `vault.shredded` audit row written by the vault, actor
`system:vault_reaper`. A record referenced by any row, including a deleted
card's tombstone, is never touched (a tombstone's token is already shredded
and so never listed). What the grace must cover: a caller's tokenize-then-write
window. A caller that kept a token longer than the grace before storing it
would lose the value; none does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.apps import apps
from django.db import models, router
from django.utils import timezone

from audit.services.events import Actor
from tokenvault.client import VaultClient, vault_client
from tokenvault.services.retention import MAX_REAP_BATCH, MAX_REAP_CANDIDATES_PAGE, REAP_MIN_AGE

logger = logging.getLogger(__name__)
REAPER_ACTOR = Actor.system("vault_reaper")
# The vault's own limits (tokenvault/services/retention.py): a younger cutoff or a larger page is refused there.
GRACE_HOURS_MIN = REAP_MIN_AGE // timedelta(hours=1)
CANDIDATES_PAGE = MAX_REAP_CANDIDATES_PAGE
REAP_BATCH = MAX_REAP_BATCH


@dataclass
class ReapSummary:
    not_issued_since: datetime
    dry_run: bool
    examined: int = 0  # live records last issued before the cutoff
    referenced: int = 0
    orphans: int = 0
    shredded: int = 0
    skipped: int = 0  # re-issued since the cutoff, or shredded by someone else, meanwhile


def vault_token_fields() -> list[tuple[type[models.Model], str]]:
    """Every (model, field name) an installed app declares as holding vault tokens, in the main database."""
    fields = []
    for app_config in apps.get_app_configs():
        for model_name, field_name in getattr(app_config, "vault_token_fields", ()):
            model = app_config.get_model(model_name)
            model._meta.get_field(field_name)  # a typo fails loudly, not as "nothing references anything"
            if router.db_for_read(model) != "default":
                raise ValueError(f"{model._meta.label}.{field_name}: vault token fields live in the main database")
            fields.append((model, field_name))
    return fields


def _referenced(tokens: list[str], fields: list[tuple[type[models.Model], str]]) -> set[str]:
    """The subset of `tokens` some declared field holds (any row, whatever its status)."""
    found: set[str] = set()
    for model, field_name in fields:
        found.update(model._base_manager.filter(**{f"{field_name}__in": tokens}).values_list(field_name, flat=True))
    return found


def vault_orphans_reap(
    *,
    grace_hours: int,
    dry_run: bool = False,
    client: VaultClient | None = None,
    now: datetime | None = None,
) -> ReapSummary:
    """Shred every vault record unreferenced here and not issued for `grace_hours`; safe to run concurrently.

    `dry_run` lists and counts without shredding. Vault refusals and outages
    propagate (`VaultUnavailable`); what was shredded before stays shredded
    and a rerun continues the work (each shred is its own vault transaction).
    """
    if grace_hours < GRACE_HOURS_MIN:
        raise ValueError(f"the grace must be at least {GRACE_HOURS_MIN} hour(s)")
    client = client or vault_client()
    fields = vault_token_fields()
    if not fields:
        raise ValueError("no app declares vault_token_fields: every record would look orphaned")
    cutoff = (now or timezone.now()) - timedelta(hours=grace_hours)
    summary = ReapSummary(not_issued_since=cutoff, dry_run=dry_run)
    after_id = 0
    while True:
        page = client.reap_candidates(not_issued_since=cutoff, after_id=after_id, limit=CANDIDATES_PAGE)
        if not page:
            break
        tokens = [item.token for item in page]
        referenced = _referenced(tokens, fields)
        orphans = [token for token in tokens if token not in referenced]
        summary.examined += len(tokens)
        summary.referenced += len(referenced)
        summary.orphans += len(orphans)
        if not dry_run:
            for start in range(0, len(orphans), REAP_BATCH):
                shredded, skipped = client.reap(
                    tokens=orphans[start : start + REAP_BATCH], not_issued_since=cutoff, actor=REAPER_ACTOR
                )
                summary.shredded += len(shredded)
                summary.skipped += len(skipped)
        if len(page) < CANDIDATES_PAGE:
            break
        after_id = page[-1].id
    logger.info(
        "vault orphan reap finished",
        extra={
            "dry_run": dry_run,
            "examined": summary.examined,
            "referenced": summary.referenced,
            "orphans": summary.orphans,
            "shredded": summary.shredded,
            "skipped": summary.skipped,
        },
    )
    return summary
