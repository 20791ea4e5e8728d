"""The vault's half of the orphan reaper: list stale live records, shred those the caller says nobody holds.

Only the API role knows which tokens its rows reference, and only the vault
knows which records exist, so the reaper (`tokenvault/services/reaper.py`,
API role) walks the candidates this module lists and sends back the ones no
row references. The vault trusts that judgement as it trusts every asserted
actor (ADR 0012), with two checks of its own that keep a caller's mistake
from destroying a value somebody is about to store:

* the cutoff must be at least `REAP_MIN_AGE` old by the vault's clock, so a
  card save between its tokenize and its own write is never a candidate;
* each shred re-reads `last_issued_at` under the row lock
  (`vault_shred(not_issued_since=...)`), so a convergent tokenize that
  re-issued the token after it was listed keeps it.

Candidates carry tokens and ids, never a value, fragment or blind index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from audit.services.events import Actor
from tokenvault.exceptions import ReapCutoffTooRecent, TokenNotFound
from tokenvault.models import VaultRecord
from tokenvault.services.records import VAULT, vault_shred_not_issued_since

REAP_MIN_AGE = timedelta(hours=1)
MAX_REAP_CANDIDATES_PAGE = 1000
MAX_REAP_BATCH = 100


@dataclass(frozen=True, slots=True)
class ReapCandidate:
    id: int
    token: str
    token_type: str


@dataclass(frozen=True, slots=True)
class ReapOutcome:
    shredded: list[str]
    skipped: list[str]  # re-issued since the cutoff, already shredded, or unknown


def _require_old_enough(not_issued_since: datetime) -> None:
    if timezone.is_naive(not_issued_since):
        raise ReapCutoffTooRecent("the cutoff needs a time zone")
    if not_issued_since > timezone.now() - REAP_MIN_AGE:
        raise ReapCutoffTooRecent(f"the cutoff must be at least {REAP_MIN_AGE} in the past")


def vault_reap_candidates(*, not_issued_since: datetime, after_id: int = 0, limit: int) -> list[ReapCandidate]:
    """Live records last issued before `not_issued_since`, by id after `after_id` (keyset pages, ≤ 1000).

    Keyset rather than offset pagination: shredding a page's orphans changes
    no id, so the walk neither skips nor repeats records while it reaps.
    """
    _require_old_enough(not_issued_since)
    if not 1 <= limit <= MAX_REAP_CANDIDATES_PAGE:
        raise ValueError(f"limit must be 1 to {MAX_REAP_CANDIDATES_PAGE}")
    rows = (
        VaultRecord.objects.using(VAULT)
        .filter(id__gt=after_id, shredded_at__isnull=True, last_issued_at__lt=not_issued_since)
        .order_by("id")
        .values_list("id", "token", "token_type")[:limit]
    )
    return [ReapCandidate(id=id_, token=token, token_type=token_type) for id_, token, token_type in rows]


def vault_reap(*, tokens: list[str], not_issued_since: datetime, actor: Actor) -> ReapOutcome:
    """Shred each token not issued since the cutoff, one row lock and one audit row (`vault.shredded`) each.

    Every token is its own transaction: a record re-issued meanwhile is skipped
    without holding back the others, and a retry after a lost answer shreds
    nothing twice.
    """
    _require_old_enough(not_issued_since)
    if len(tokens) > MAX_REAP_BATCH:
        raise ValueError(f"at most {MAX_REAP_BATCH} tokens per call")
    shredded: list[str] = []
    skipped: list[str] = []
    for token in dict.fromkeys(tokens):
        try:
            done = vault_shred_not_issued_since(token=token, actor=actor, not_issued_since=not_issued_since)
        except TokenNotFound:
            done = False
        (shredded if done else skipped).append(token)
    return ReapOutcome(shredded=shredded, skipped=skipped)
