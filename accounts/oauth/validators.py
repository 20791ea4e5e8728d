"""DOT's request validator with the rules a payments platform needs on top.

* A replayed refresh token revokes its whole family (DOT's reuse protection)
  and is recorded as `token.reuse_detected`.
* A refresh token family dies a fixed time after the original login, however
  often it rotates (DOT's expiry alone slides with each rotation).
* An authorization code used twice revokes every token issued from it
  (RFC 6749 §4.1.2) and is recorded as `token.code_reuse_detected`. Exchanges
  run in one transaction and lock the grant row, so two racing exchanges of
  one code cannot both succeed.
* The login's authentication time and MFA time travel from the browser session
  (authorize) to the tokens (an `OAuthSession` per refresh-token family).
* `sub` is the user's public id, never the database key or the email.
* `vault:detokenize` is issued only on the client credentials grant, and only
  to a client whose policy lists token types it may detokenize (ADR 0012):
  asking for it otherwise is `invalid_scope`, and no other scope changes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone
from oauth2_provider.models import AccessToken, Grant, RefreshToken
from oauth2_provider.oauth2_validators import OAuth2Validator

from accounts.models import OAuthClientPolicy, OAuthSession
from accounts.oauth.tokens import token_checksum
from audit.models import AuditEvent
from audit.services.events import Actor, audit_event_record
from fintech.redis_client import get_redis, redis_key

DETOKENIZE_SCOPE = "vault:detokenize"
USED_CODE_TTL_SECONDS = 600
GRANT_CONTEXT_TTL_SECONDS = 120


def _code_key(kind: str, code: str) -> str:
    return redis_key("oauth", kind, token_checksum(code))


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class FintechOAuth2Validator(OAuth2Validator):
    # --- authorization code: carry the login context, refuse and punish replays ---------

    def _create_authorization_code(self, request, code, expires=None):
        grant = super()._create_authorization_code(request, code, expires)
        context = getattr(request, "fintech_auth", None) or {}
        get_redis().set(_code_key("grant", code["code"]), json.dumps(context), ex=GRANT_CONTEXT_TTL_SECONDS)
        return grant

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        # The token view runs in a transaction: the lock makes racing exchanges of
        # one code queue up, and the loser finds the grant gone (a replay).
        locked = Grant.objects.select_for_update().filter(code=code, application=client).exists()
        if not locked:
            self._revoke_tokens_of_replayed_code(code, client, request)
            return False
        valid = super().validate_code(client_id, code, client, request, *args, **kwargs)
        if valid:
            raw = get_redis().get(_code_key("grant", code))
            request.fintech_auth = json.loads(raw) if raw else {}
        return valid

    def _revoke_tokens_of_replayed_code(self, code, client, request) -> None:
        raw = get_redis().get(_code_key("used", code))
        if not raw:
            return
        issued = json.loads(raw)
        AccessToken.objects.filter(id__in=issued.get("access_token_ids", [])).delete()
        if issued.get("token_family"):
            RefreshToken.revoke_family(issued["token_family"])
        audit_event_record(
            event_type="token.code_reuse_detected",
            outcome=AuditEvent.Outcome.DENIED,
            actor=Actor(client=client.client_id),
            object_type="oauth.token_family",
            object_id=issued.get("token_family") or "",
            payload={"revoked_access_tokens": len(issued.get("access_token_ids", []))},
        )

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs):
        super().invalidate_authorization_code(client_id, code, request, *args, **kwargs)
        issued = getattr(request, "fintech_issued", {})
        get_redis().set(_code_key("used", code), json.dumps(issued), ex=USED_CODE_TTL_SECONDS)
        get_redis().delete(_code_key("grant", code))

    # --- tokens: remember what was issued, bind the login context to the family ---------

    def save_bearer_token(self, token, request, *args, **kwargs):
        super().save_bearer_token(token, request, *args, **kwargs)
        access = AccessToken.objects.filter(token_checksum=token_checksum(token["access_token"]))
        access_ids = list(access.values_list("id", flat=True))
        family = None
        if token.get("refresh_token"):
            checksum = token_checksum(token["refresh_token"])
            family = RefreshToken.objects.filter(token_checksum=checksum).values_list("token_family", flat=True).first()
        request.fintech_issued = {"access_token_ids": access_ids, "token_family": str(family) if family else None}
        if family and request.grant_type == "authorization_code" and request.user is not None:
            context = getattr(request, "fintech_auth", {}) or {}
            OAuthSession.objects.get_or_create(
                token_family=family,
                defaults={
                    "user": request.user,
                    "client_id": request.client.client_id,
                    "authenticated_at": _parse_time(context.get("authenticated_at")) or timezone.now(),
                    "mfa_verified_at": _parse_time(context.get("mfa_verified_at")),
                },
            )

    # --- refresh: reuse detection, absolute lifetime ---------------------------------------

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        checksum = token_checksum(refresh_token)
        known = RefreshToken.objects.filter(token_checksum=checksum, application=client).first()
        valid = super().validate_refresh_token(refresh_token, client, request, *args, **kwargs)
        if not valid and known is not None and known.revoked is not None:
            audit_event_record(
                event_type="token.reuse_detected",
                outcome=AuditEvent.Outcome.DENIED,
                actor=Actor(user=str(known.user.public_id) if known.user_id else "", client=client.client_id),
                object_type="oauth.token_family",
                object_id=str(known.token_family or ""),
                payload={"action": "family revoked"},
            )
            return False
        if valid and known is not None and known.token_family:
            session = OAuthSession.objects.filter(token_family=known.token_family).first()
            started = session.authenticated_at if session else known.created
            limit = timedelta(seconds=settings.OAUTH_REFRESH_TOKEN_ABSOLUTE_SECONDS)
            if timezone.now() - started > limit:
                RefreshToken.revoke_family(known.token_family)
                return False
        return valid

    # --- scopes: detokenization only for clients staff allowed it -------------------------

    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs):
        if DETOKENIZE_SCOPE in scopes:
            if getattr(request, "grant_type", None) != "client_credentials":
                return False
            types = (
                OAuthClientPolicy.objects.filter(application=client)
                .values_list("detokenize_token_types", flat=True)
                .first()
            )
            if not types:
                return False
        return super().validate_scopes(client_id, scopes, client, request, *args, **kwargs)

    # --- OpenID Connect claims ------------------------------------------------------------

    def get_claim_dict(self, request):
        claims = super().get_claim_dict(request)
        claims["sub"] = lambda r: str(r.user.public_id)
        return claims

    def get_additional_claims(self, request):
        context = getattr(request, "fintech_auth", None) or {}
        mfa = bool(context.get("mfa_verified_at"))
        return {
            "acr": "urn:fintech:acr:mfa" if mfa else "urn:fintech:acr:password",
            "amr": ["pwd", "otp"] if mfa else ["pwd"],
        }


def session_for_token(access_token) -> OAuthSession | None:
    """The login behind an access token (None for client-credentials tokens)."""
    family = RefreshToken.objects.filter(access_token=access_token).values_list("token_family", flat=True).first()
    if family is None and access_token.source_refresh_token_id:
        family = (
            RefreshToken.objects.filter(id=access_token.source_refresh_token_id)
            .values_list("token_family", flat=True)
            .first()
        )
    return OAuthSession.objects.filter(token_family=family).first() if family else None


def as_utc_text(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None
