"""Writes to the token vault: tokenize, detokenize, shred, reap orphans, rewrap, rotate and retire keys.

Two databases are involved: vault rows live in `vault`, audit rows in
`default`. PostgreSQL cannot commit both atomically, so every service nests
`atomic(using="default")` inside `atomic(using="vault")`: the audit row
commits first and the vault change right after. A crash between the two
leaves an audit row for a change that did not happen (the caller retries;
every service here is safe to retry), never a change without its audit row.
Detokenize commits its `pii.read` row before the value is returned, so no
value leaves the vault unrecorded.

Services open `transaction.atomic()`, not a durable one, like the ledger's:
a later HTTP layer may wrap them in its own transaction.

In production only the vault role (`fintech.settings.vault`) holds the vault
database and its keys, so only its processes can run these (ADR 0012); the
API role reaches them through `tokenvault.client`.
"""

from tokenvault.services.detokenize import MAX_DETOKENIZE_BATCH, vault_detokenize, vault_detokenize_many
from tokenvault.services.keys import (
    MAX_REWRAP_BATCH,
    RewrapProgress,
    kek_retire,
    kek_rotate,
    vault_rewrap,
    vault_rewrap_pending_count,
)
from tokenvault.services.records import (
    AUDIT,
    FIELDS,
    MAX_TOKEN_LENGTH,
    MAX_TOKENIZE_ATTEMPTS,
    OBJECT_TYPE,
    VAULT,
    Tokenized,
    vault_shred,
    vault_shred_not_issued_since,
    vault_tokenize,
)
from tokenvault.services.retention import (
    MAX_REAP_BATCH,
    MAX_REAP_CANDIDATES_PAGE,
    REAP_MIN_AGE,
    ReapCandidate,
    ReapOutcome,
    vault_reap,
    vault_reap_candidates,
)

__all__ = [
    "AUDIT",
    "FIELDS",
    "MAX_DETOKENIZE_BATCH",
    "MAX_REAP_BATCH",
    "MAX_REAP_CANDIDATES_PAGE",
    "MAX_REWRAP_BATCH",
    "MAX_TOKENIZE_ATTEMPTS",
    "MAX_TOKEN_LENGTH",
    "OBJECT_TYPE",
    "REAP_MIN_AGE",
    "VAULT",
    "ReapCandidate",
    "ReapOutcome",
    "RewrapProgress",
    "Tokenized",
    "kek_retire",
    "kek_rotate",
    "vault_detokenize",
    "vault_detokenize_many",
    "vault_reap",
    "vault_reap_candidates",
    "vault_rewrap",
    "vault_rewrap_pending_count",
    "vault_shred",
    "vault_shred_not_issued_since",
    "vault_tokenize",
]
