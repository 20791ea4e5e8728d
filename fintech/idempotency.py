"""Idempotency-Key for every state-changing /v1 call: exactly one effect per key.

Why not the usual check-then-set in a cache: two concurrent requests with one
key both see "absent" and both run. Here, inside one durable transaction:

1. a transaction-scoped advisory lock on (client, principal, key): a second
   request with the key while the first runs gets 409 at once;
2. the stored record, if any: same fingerprint -> the original status and
   body again (`Idempotent-Replayed: true`); different request -> 422
   (1 and 2 are one round trip, `fintech_idempotency_claim`, a PL/pgSQL
   function whose lookup reads a snapshot taken after the lock: see
   fintech/migrations/0002);
3. otherwise the operation runs in a savepoint and its outcome is stored in
   the same transaction as its effect: both commit, or neither does. The
   call's `api.call` audit row goes in the same statement as the record
   (audit/middleware.py says when it does not, and who writes it then).

Error policy (ADR 0006): a domain refusal (insufficient funds, a limit) is an
outcome and is stored, so a retry with the key gets the same answer instead of
moving money later. Input validation (400) happens before this and is not
stored; an unexpected error rolls everything back, so a retry runs afresh; so
does a 401 (step-up required), a 429 or a 5xx refusal.
Deadlocks and serialization failures are retried a bounded number of times.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from drf_spectacular.utils import OpenApiParameter
from prometheus_client import Counter
from rest_framework.response import Response

from fintech.db_retry import run_with_retry
from fintech.json_documents import json_column
from fintech.models import IdempotencyRecord
from fintech.problems import PROBLEM_CONTENT_TYPE, DomainError, problem_body

logger = logging.getLogger(__name__)
TAMPERED = Counter("fintech_idempotency_records_tampered_total", "Stored idempotency outcomes failing their MAC.")

HEADER = "Idempotency-Key"
_ACCEPTABLE_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces


class IdempotencyKeyMissing(DomainError):
    status = 400
    code = "idempotency_key_missing"
    title = "An Idempotency-Key header is required for this call"


class IdempotencyKeyInvalid(DomainError):
    status = 400
    code = "idempotency_key_invalid"
    title = "The Idempotency-Key must be 1-255 printable ASCII characters"


class IdempotencyKeyInProgress(DomainError):
    status = 409
    code = "idempotency_key_in_progress"
    title = "A request with this Idempotency-Key is still being processed"


class IdempotencyRecordTampered(DomainError):
    """The stored outcome fails its MAC: it was changed outside the application. Never replayed, never rerun."""

    status = 409
    code = "idempotency_record_invalid"
    title = "The stored outcome of this Idempotency-Key cannot be trusted; contact support"


class IdempotencyKeyReused(DomainError):
    status = 422
    code = "idempotency_key_reused"
    title = "This Idempotency-Key was used for a different request"


def idempotency_key_from(request) -> str:
    key = request.headers.get(HEADER, "")
    if not key:
        raise IdempotencyKeyMissing()
    if not _ACCEPTABLE_KEY.match(key):
        raise IdempotencyKeyInvalid()
    return idempotency_key_digest(key)


def idempotency_key_digest(key: str, *, secret: str | None = None) -> str:
    """What is stored and locked on instead of the key: a keyed digest, so the key is never kept.

    Refusing keys that look like a card number (as references are) also refused
    about one random UUID in 4,000: a digit run with a card brand's prefix,
    length and Luhn digit. Keeping only the digest keeps a card number used as a
    key out of storage without refusing honest keys. `secret`: a fallback secret
    (after a rotation); default the current one.
    """
    return salted_hmac("fintech.idempotency.key", key, secret=secret, algorithm="sha256").hexdigest()


def response_mac(*record: Any) -> str:
    """HMAC-SHA256 over the whole stored outcome, under a key derived from the Django secret (not in the database).

    Someone holding only the database login can rewrite a stored response (a
    replay would return another answer) or its status; the MAC no longer
    matches and the replay is refused (issue 12).
    """
    # record: client id, principal, key digest, fingerprint, status, body: in that order, as stored.
    canonical = json.dumps(list(record), sort_keys=True, separators=(",", ":"), default=str)
    return salted_hmac("fintech.idempotency.response", canonical, algorithm="sha256").hexdigest()


def _stored_under_an_older_secret(request, client_id: str, principal: str) -> bool:
    """A record digested under a SECRET_KEY_FALLBACKS secret: the key was used before the rotation.

    Its fingerprint is keyed by the old secret too, so it could not be replayed;
    it is refused (422) as a reused key would be, never run again. No fallback
    secrets (the usual case): no query.
    """
    key = request.headers.get(HEADER, "")
    digests = [idempotency_key_digest(key, secret=old) for old in getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return (
        bool(digests)
        and IdempotencyRecord.objects.filter(client_id=client_id, principal=principal, key__in=digests).exists()
    )


def _caller(request) -> tuple[str, str]:
    application = getattr(request.auth, "application", None)
    user = request.user if getattr(request.user, "is_authenticated", False) else None
    return (application.client_id if application else "", str(user.public_id) if user else "client")


def _fingerprint(request, payload: Any) -> str:
    """A keyed digest: bodies carry card numbers and national IDs, which an unkeyed hash would let anyone
    holding the table brute-force (PCI DSS 3.5.1 asks for keyed hashes of a PAN)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    message = f"{request.method}\n{request.path}\n{canonical}".encode()
    return hmac.new(_fingerprint_key(), message, hashlib.sha256).hexdigest()


def _fingerprint_key() -> bytes:
    return hashlib.sha256(f"idempotency-fingerprint\n{settings.SECRET_KEY}".encode()).digest()


# Literals; every value is a bound parameter. The INSERT is what `IdempotencyRecord.objects.create`
# sends, without the model machinery and the RETURNING it does not need (this runs on every write call).
_CLAIM_SQL = "SELECT r_locked, r_fingerprint, r_status, r_body, r_mac FROM fintech_idempotency_claim(%s, %s, %s, %s)"
_RECORD_SQL = (
    "INSERT INTO fintech_idempotencyrecord"
    " (client_id, principal, key, fingerprint, response_status, response_body, response_mac, created_at, expires_at)"
    " VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s, STATEMENT_TIMESTAMP(), %s)"
)


def _lock_id(client_id: str, principal: str, key: str) -> int:
    digest = hashlib.sha256(f"idempotency\n{client_id}\n{principal}\n{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def idempotent_response(
    request, payload: Any, operation: Callable[[], tuple[int, dict]], *, savepoint: bool = True
) -> Response:
    """Run `operation` (returning status and body) at most once per Idempotency-Key.

    `savepoint=False` is for an operation that writes nothing when it raises a
    `DomainError` (it refuses before its first write): its refusal is stored
    without the SAVEPOINT / RELEASE round trips that would otherwise undo
    partial writes. Any other exception still rolls the whole transaction back.
    """
    key = idempotency_key_from(request)
    client_id, principal = _caller(request)
    fingerprint = _fingerprint(request, payload)

    def attempt() -> tuple[int, dict, bool, tuple[int, int] | None]:
        """Status, body, replayed, and (status, response bytes) of the `api.call` row it committed, if any.

        The audit mark is part of what an attempt returns: only the attempt that
        committed counts, whatever earlier attempts of a retry wrote and lost.
        """
        with transaction.atomic(durable=True):
            with connection.cursor() as cursor:
                # One round trip: the lock, then (fresh snapshot) the record; see fintech/migrations/0002.
                cursor.execute(_CLAIM_SQL, [_lock_id(client_id, principal, key), client_id, principal, key])
                locked, stored_fingerprint, stored_status, stored_body, stored_mac = cursor.fetchone()
            if not locked:
                raise IdempotencyKeyInProgress()
            if stored_status is None and _stored_under_an_older_secret(request, client_id, principal):
                raise IdempotencyKeyReused()  # after a secret rotation: never run a stored call twice
            if stored_status is not None:
                if stored_fingerprint != fingerprint:
                    raise IdempotencyKeyReused()
                stored = json_column(stored_body)
                if not hmac.compare_digest(
                    stored_mac or "", response_mac(client_id, principal, key, fingerprint, stored_status, stored)
                ):
                    TAMPERED.inc()
                    logger.error("idempotency record fails its MAC: not replayed", extra={"client_id": client_id})
                    raise IdempotencyRecordTampered()
                return stored_status, stored, True, None
            try:
                if savepoint:
                    with transaction.atomic():
                        status, body = operation()
                else:
                    status, body = operation()
            except DomainError as refusal:
                if refusal.status >= 500 or refusal.status in (401, 429):
                    # A dependency that is down (503), a rate limit (429, with its Retry-After) or a demand for
                    # stronger authentication (401, e.g. an RFC 9470 step-up challenge in its WWW-Authenticate)
                    # is not an answer about this request: nothing is stored, a retry runs afresh (after the
                    # client stepped up, with the same key), and the error keeps its headers.
                    raise
                status = refusal.status
                body = problem_body(
                    request,
                    status=status,
                    code=refusal.code,
                    title=refusal.title,
                    detail=refusal.detail,
                    **refusal.extra,
                )
            expires_at = timezone.now() + timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)
            statement = _RECORD_SQL
            mac = response_mac(client_id, principal, key, fingerprint, status, body)
            params = [client_id, principal, key, fingerprint, status, json.dumps(body), mac, expires_at]
            api_call = _api_call_insert(request, status, body)
            if api_call is not None:
                # The call's audit row rides in the same statement, so it commits (or not) with the effect.
                statement = f"WITH api_call AS ({api_call[0]}) {_RECORD_SQL}"
                params = api_call[1] + params
            with connection.cursor() as cursor:
                cursor.execute(statement, params)
            return status, body, False, (status, api_call[2]) if api_call is not None else None

    status, body, replayed, audited = run_with_retry(attempt)
    if audited is not None:
        # Committed: the audit middleware need not write this call's row (unless the response changes).
        request.api_call_audit.recorded = audited
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    content_type = PROBLEM_CONTENT_TYPE if status >= 400 else None
    # 204 has no body on the wire (RFC 9110 §15.3.5); `{}` is only what the record stores.
    return Response(None if status == 204 else body, status=status, headers=headers, content_type=content_type)


def _api_call_insert(request, status: int, body: dict) -> tuple[str, list, int] | None:
    """The `api.call` audit row of this request as (INSERT, parameters, response bytes), when one is pending.

    `audit.middleware.ApiCallAuditMiddleware` leaves a `PendingApiCall` on the
    request; without one (a call outside the middleware) the middleware path
    applies unchanged. It sizes the response exactly as the view's renderer will.
    """
    pending = getattr(request, "api_call_audit", None)
    renderer = getattr(request, "accepted_renderer", None)
    if pending is None or renderer is None:
        return None
    return pending.insert_statement(
        status=status, body=None if status == 204 else body, renderer=renderer, media_type=request.accepted_media_type
    )


def idempotency_records_purge(*, batch_size: int = 5000) -> int:
    """Delete expired records in bounded batches; returns how many went.

    Through the owner's function (fintech/migrations/0004): the runtime role may
    not DELETE a record, so it cannot make a retry run twice; expiry is the
    database clock's, not the caller's.
    """
    deleted_total = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT fintech_idempotency_purge(%s)", [batch_size])
            deleted = cursor.fetchone()[0]
        deleted_total += deleted
        if deleted < batch_size:
            return deleted_total


IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER,
    str,
    location=OpenApiParameter.HEADER,
    required=True,
    description="Unique per operation (e.g. a UUID). Same key + same request replays the answer "
    "(Idempotent-Replayed: true); same key + different request is 422; while the first runs, 409.",
)
