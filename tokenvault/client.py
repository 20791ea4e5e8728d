"""The API role's client of the vault role (ADR 0012): tokenize, detokenize, shred, reap orphans over HTTP.

What callers can rely on:

* A refusal by the vault comes back as the same `DomainError` class and code
  the vault raised (`InvalidCardNumber`, `TokenNotFound`, `TokenShredded`,
  `DetokenizeForbidden`, ...), so an API view answers it verbatim. A code this
  client has no class for becomes `VaultRefused` with the vault's status and code.
* Anything else - connection refused, timeout, a 5xx, a redirect, a body that
  is not what the vault sends, or the vault refusing *our* service credential
  (a deployment mistake, not the end user's) - is `VaultUnavailable` (503).
  Nothing was written on our side; the details go to the log, never a value.
* Timeouts are short (VAULT_CONNECT_TIMEOUT_SECONDS, VAULT_READ_TIMEOUT_SECONDS).
  Idempotent calls are retried up to VAULT_MAX_ATTEMPTS with a small backoff:
  detokenize (a read), shred (shredding twice is shredding once) and a
  *convergent* tokenize (the same value gets the same token). A plain tokenize
  is never retried: if the first request reached the vault and only the answer
  was lost, a retry would vault the value a second time under another token.

Request and response bodies carry card numbers and national ids: they are
never logged, and neither are the service credential or the tokens.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from audit.services.events import Actor
from fintech.problems import DomainError
from fintech.request_context import current_request_id
from tokenvault import exceptions as vault_exceptions
from tokenvault.exceptions import VaultRefused, VaultUnavailable

logger = logging.getLogger(__name__)
MAX_ATTEMPTS_CEILING = 5
BACKOFF_BASE_SECONDS = 0.05  # 50 ms, then 100 ms, 200 ms (+ jitter): the vault is on the same network
_STANDARD_PROBLEM_FIELDS = frozenset({"type", "title", "status", "detail", "code", "instance", "request_id"})
# The vault refusing our own credential is our deployment's fault: the end user gets a 503.
_SERVICE_AUTH_CODES = frozenset({
    vault_exceptions.ServiceCredentialMissing.code,
    vault_exceptions.ServiceCredentialInvalid.code,
})  # fmt: skip


def _domain_error_classes() -> dict[str, type[DomainError]]:
    """Every vault DomainError by its code, so a refusal is re-raised as the class the vault raised."""
    classes = {}
    for item in vars(vault_exceptions).values():
        if isinstance(item, type) and issubclass(item, DomainError) and item.__module__ == vault_exceptions.__name__:
            classes[item.code] = item
    classes.pop(VaultRefused.code, None)  # no class-level code of its own
    return classes


_CLASSES_BY_CODE = _domain_error_classes()


@dataclass(frozen=True)
class TokenizedValue:
    token: str
    token_type: str
    created: bool  # False when a convergent call found the value already vaulted
    last4: str
    brand: str
    exp_month: int | None
    exp_year: int | None


@dataclass(frozen=True)
class ReapCandidateRef:
    id: int
    token: str
    token_type: str


class _Retryable(Exception):
    """One attempt failed in a way a retry may fix; carries what to log."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class VaultClient:
    """Thread-safe: each thread gets its own HTTP session (connection reuse without sharing state)."""

    def __init__(
        self,
        *,
        base_url: str,
        service_token: str,
        connect_timeout_seconds: float,
        read_timeout_seconds: float,
        max_attempts: int,
        ca_bundle: str = "",
        client_certificate: tuple[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._service_token = service_token
        self.timeout = (connect_timeout_seconds, read_timeout_seconds)
        self.max_attempts = max(1, min(max_attempts, MAX_ATTEMPTS_CEILING))
        self._verify: str | bool = ca_bundle or True
        # (certificate PEM path, key PEM path): presented to the TLS terminator in front of the vault (mutual
        # TLS, issue 14); the service token stays as a second factor.
        self._cert = client_certificate
        self._local = threading.local()

    def __repr__(self) -> str:  # never the credential
        return f"VaultClient({self.base_url!r})"

    # --- the three calls --------------------------------------------------------------

    def tokenize(
        self,
        *,
        token_type: str,
        value: str,
        actor: Actor,
        convergent: bool = False,
        format_preserving: bool = False,
        metadata: dict | None = None,
    ) -> TokenizedValue:
        """Vault `value`; retried on failure only when `convergent` (see the module docstring)."""
        body = self._post(
            "tokenize",
            {
                "actor": asdict(actor),
                "token_type": token_type,
                "value": value,
                "convergent": convergent,
                "format_preserving": format_preserving,
                "metadata": metadata or {},
            },
            idempotent=convergent,
        )
        try:
            return TokenizedValue(
                token=str(body["token"]),
                token_type=str(body["token_type"]),
                created=bool(body["created"]),
                last4=str(body["last4"]),
                brand=str(body["brand"]),
                exp_month=body["exp_month"],
                exp_year=body["exp_year"],
            )
        except (KeyError, TypeError):
            logger.error("vault tokenize answer has an unexpected shape")
            raise VaultUnavailable() from None

    def detokenize(
        self,
        *,
        tokens: list[str],
        actor: Actor,
        purpose: str,
        permitted_token_types: frozenset[str],
        reason: str = "",
    ) -> dict[str, str]:
        """{token: value} for every token, or the vault's refusal; each read is audited by the vault."""
        body = self._post(
            "detokenize",
            {
                "actor": asdict(actor),
                "tokens": list(tokens),
                "purpose": purpose,
                "reason": reason,
                "permitted_token_types": sorted(permitted_token_types),
            },
            idempotent=True,
        )
        values = body.get("values") if isinstance(body, dict) else None
        if not isinstance(values, dict) or set(values) != set(tokens):
            logger.error("vault detokenize answer has an unexpected shape")
            raise VaultUnavailable()
        return values

    def shred(self, *, token: str, actor: Actor) -> None:
        """Destroy the value behind `token` for good (idempotent: a shredded token stays shredded)."""
        self._post("shred", {"actor": asdict(actor), "token": token}, idempotent=True)

    # --- the orphan reaper's calls (tokenvault/services/reaper.py) -----------------------

    def reap_candidates(self, *, not_issued_since: datetime, after_id: int, limit: int) -> list[ReapCandidateRef]:
        """One keyset page of live records last issued before the cutoff (tokens and ids, no values)."""
        body = self._post(
            "reap-candidates",
            {"not_issued_since": not_issued_since.isoformat(), "after_id": after_id, "limit": limit},
            idempotent=True,
        )
        try:
            return [
                ReapCandidateRef(id=int(item["id"]), token=str(item["token"]), token_type=str(item["token_type"]))
                for item in body["candidates"]
            ]
        except (KeyError, TypeError, ValueError):
            logger.error("vault reap-candidates answer has an unexpected shape")
            raise VaultUnavailable() from None

    def reap(self, *, tokens: list[str], not_issued_since: datetime, actor: Actor) -> tuple[list[str], list[str]]:
        """(shredded, skipped): shred each token the vault still finds not issued since the cutoff.

        Retried like shred: a repeat shreds nothing twice (a token shredded by a
        lost first attempt comes back as skipped).
        """
        body = self._post(
            "reap",
            {"actor": asdict(actor), "tokens": list(tokens), "not_issued_since": not_issued_since.isoformat()},
            idempotent=True,
        )
        shredded, skipped = body.get("shredded"), body.get("skipped")
        well_formed = isinstance(shredded, list) and isinstance(skipped, list)
        if not well_formed or set(shredded) | set(skipped) != set(tokens):
            logger.error("vault reap answer has an unexpected shape")
            raise VaultUnavailable()
        return [str(token) for token in shredded], [str(token) for token in skipped]

    # --- transport ----------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no proxy or netrc from the environment on this link
            adapter = HTTPAdapter(max_retries=0, pool_connections=1, pool_maxsize=1)  # retries are ours
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
        return session

    def _post(self, operation: str, payload: dict[str, Any], *, idempotent: bool) -> Any:
        if not self.base_url:
            logger.error("VAULT_URL is not configured: the vault cannot be reached")
            raise VaultUnavailable()
        attempts = self.max_attempts if idempotent else 1
        for attempt in range(1, attempts + 1):
            try:
                return self._attempt(operation, payload)
            except _Retryable as failure:
                logger.warning(
                    "vault call failed",
                    extra={"vault_operation": operation, "attempt": attempt, "reason": failure.reason},
                )
                if attempt < attempts:
                    time.sleep(BACKOFF_BASE_SECONDS * 2 ** (attempt - 1) * (1 + random.random()))  # noqa: S311  # nosec B311 - jitter
        raise VaultUnavailable(headers={"Retry-After": "1"})

    def _attempt(self, operation: str, payload: dict[str, Any]) -> Any:
        headers = {"Authorization": f"Bearer {self._service_token}", "Accept": "application/json"}
        request_id = current_request_id()
        if request_id:
            headers["X-Request-ID"] = request_id
        try:
            response = self._session().post(
                f"{self.base_url}/internal/v1/{operation}",
                json=payload,
                headers=headers,
                timeout=self.timeout,
                verify=self._verify,
                cert=self._cert,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise _Retryable("timeout") from None
        except requests.RequestException as exc:  # refused, reset, TLS, DNS
            raise _Retryable(type(exc).__name__) from None
        return _answer(operation, response)


def _answer(operation: str, response: requests.Response) -> Any:
    """The decoded body of a success, or the matching exception."""
    status = response.status_code
    if status == 204:
        return {}
    try:
        body = response.json()
    except ValueError:
        body = None
    if 200 <= status < 300 and isinstance(body, dict):
        return body
    if status >= 500 or not isinstance(body, dict) or not isinstance(body.get("code"), str):
        # 5xx (ours to retry), a redirect or a body that is not a problem document (a proxy's page).
        raise _Retryable(f"status {status}" + (f" {body['code']}" if isinstance(body, dict) and "code" in body else ""))
    code = body["code"]
    if code in _SERVICE_AUTH_CODES:
        logger.error("the vault refused this process's service credential", extra={"vault_code": code})
        raise VaultUnavailable()
    detail = body.get("detail") if isinstance(body.get("detail"), str) else None
    extra = {k: v for k, v in body.items() if k not in _STANDARD_PROBLEM_FIELDS}
    cls = _CLASSES_BY_CODE.get(code)
    if cls is not None and cls.status == status:
        raise cls(detail, extra=extra)
    raise VaultRefused(status=status, code=code, title=str(body.get("title") or code), detail=detail, extra=extra)


@lru_cache(maxsize=8)
def _client(configuration: tuple) -> VaultClient:
    base_url, service_token, connect_timeout, read_timeout, attempts, ca_bundle, cert, key = configuration
    return VaultClient(
        base_url=base_url,
        service_token=service_token,
        connect_timeout_seconds=connect_timeout,
        read_timeout_seconds=read_timeout,
        max_attempts=attempts,
        ca_bundle=ca_bundle,
        client_certificate=(cert, key) if cert and key else None,
    )


def vault_client() -> VaultClient:
    """The process's client, configured from settings (one per distinct configuration, so tests can switch)."""
    return _client(
        (
            settings.VAULT_URL,
            settings.VAULT_SERVICE_TOKEN,
            settings.VAULT_CONNECT_TIMEOUT_SECONDS,
            settings.VAULT_READ_TIMEOUT_SECONDS,
            settings.VAULT_MAX_ATTEMPTS,
            settings.VAULT_CA_BUNDLE,
            settings.VAULT_CLIENT_CERT_PATH,
            settings.VAULT_CLIENT_KEY_PATH,
        )
    )
