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
* `openid` needs a client with a signing algorithm: the ID token is signed
  with it, so a client registered without one gets `invalid_scope` from the
  authorize and token endpoints, instead of a 500 while signing after the
  code was spent.
* A client with a pinned TLS client certificate authenticates with it alone
  (RFC 8705 `self_signed_tls_client_auth`, `accounts.oauth.client_certificates`),
  and its access tokens are bound to it (`cnf.x5t#S256`, under the token's MAC).
* Every access token saved gets its MAC (issue 12, `accounts.oauth.token_macs`),
  whatever the grant, and DOT's own bearer checks (userinfo) refuse a row
  whose MAC does not verify, as the /v1 lookup and introspection do.
* So do refresh tokens, authorization codes and OAuth sessions
  (`accounts.oauth.row_macs`): MAC'd where they are created (a rotated-out
  refresh token again once revoked), checked before the code or refresh grant
  issues anything from them (`invalid_grant` otherwise) and before step-up
  believes a session. A refresh needs its family's session, verified and of
  the same user and client: every family starts with one at the code exchange.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, Grant, RefreshToken
from oauth2_provider.oauth2_validators import OAuth2Validator

from accounts.models import OAuthClientPolicy, OAuthSession
from accounts.oauth.client_certificates import client_authenticated_by_certificate, has_certificate_pin
from accounts.oauth.clients import client_id_possible
from accounts.oauth.row_macs import (
    grant_macs_store,
    oauth_session_believed,
    oauth_session_macs_store,
    refresh_token_believed,
    refresh_token_macs_store,
    row_mac_verified,
)
from accounts.oauth.token_macs import access_token_macs_store
from accounts.oauth.tokens import (
    access_token_find,
    certificate_mismatch_record,
    token_certificate_matches,
    token_checksum,
)
from audit.models import AuditEvent
from audit.services.events import Actor, audit_event_record
from fintech.middleware.client_certificate import request_x5t_s256
from fintech.redis_client import get_redis, redis_key

DETOKENIZE_SCOPE = "vault:detokenize"
OPENID_SCOPE = "openid"
USED_CODE_TTL_SECONDS = 600
GRANT_CONTEXT_TTL_SECONDS = 120
logger = logging.getLogger(__name__)


def _code_key(kind: str, code: str) -> str:
    return redis_key("oauth", kind, token_checksum(code))


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _server_side(request) -> dict:
    """What this validator keeps on an oauthlib request between its steps, where no client can write it.

    oauthlib's `Request.__getattr__` answers any missing attribute with the request parameter of that name, so
    `getattr(request, "fintech_...")` would read a value the client sent in the body. The request's own
    `__dict__` is never reached that way. The authorize view's credentials (`fintech_auth`) are set by oauthlib
    with setattr, so they are in it too.
    """
    return request.__dict__


class FintechOAuth2Validator(OAuth2Validator):
    def _load_application(self, client_id, request):
        """No lookup for an id that cannot be one: NUL bytes (PostgreSQL refuses them: a 500) or over the column's
        100 characters. Such a client is unknown, the same `invalid_client` as any other."""
        if not client_id_possible(client_id):
            return None
        return super()._load_application(client_id, request)

    def _authenticate_basic_auth(self, request):
        """DOT catches bad base64 but not a header that is not ASCII at all (a ValueError: a 500): both are a
        client that failed to authenticate."""
        try:
            return super()._authenticate_basic_auth(request)
        except ValueError:
            return False

    # --- client authentication: a secret, or a pinned TLS client certificate (RFC 8705) ---------

    def authenticate_client(self, request, *args, **kwargs):
        """A client with a pinned certificate authenticates with it alone; every other confidential client with
        its secret. The certificate is the one the terminator saw (fintech/middleware/client_certificate.py)."""
        presented = request_x5t_s256(request)
        if presented and request.client_id and not request.client_secret and not self._extract_basic_auth(request):
            application = self._load_application(request.client_id, request)
            if application is None or not client_authenticated_by_certificate(application, presented):
                return False
            _server_side(request)["fintech_x5t_s256"] = presented  # its tokens are bound to this certificate
            return True
        authenticated = super().authenticate_client(request, *args, **kwargs)
        if authenticated and has_certificate_pin(request.client):
            logger.warning("secret presented by a client that authenticates with a certificate: refused")
            return False
        return authenticated

    # --- authorization code: carry the login context, refuse and punish replays ---------

    def _create_authorization_code(self, request, code, expires=None):
        with transaction.atomic():  # a code without its MAC would only be refused: never one without the other
            grant = super()._create_authorization_code(request, code, expires)
            grant_macs_store([grant])  # DOT creates codes nowhere else
        context = _server_side(request).get("fintech_auth") or {}
        get_redis().set(_code_key("grant", code["code"]), json.dumps(context), ex=GRANT_CONTEXT_TTL_SECONDS)
        return grant

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        # The token view runs in a transaction: the lock makes racing exchanges of
        # one code queue up, and the loser finds the grant gone (a replay).
        # The MAC is checked on the locked row, so what DOT reads next (PKCE challenge, redirect URI) is what verified.
        grant = (
            Grant.objects.select_for_update(of=("self",))
            .select_related("fintech_mac")
            .filter(code=code, application=client)
            .first()
        )
        if grant is None:
            self._revoke_tokens_of_replayed_code(code, client, request)
            return False
        if not row_mac_verified("grant", grant, lookup="token_endpoint"):
            return False
        valid = super().validate_code(client_id, code, client, request, *args, **kwargs)
        if valid:
            raw = get_redis().get(_code_key("grant", code))
            _server_side(request)["fintech_auth"] = json.loads(raw) if raw else {}
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
        issued = _server_side(request).get("fintech_issued", {})
        get_redis().set(_code_key("used", code), json.dumps(issued), ex=USED_CODE_TTL_SECONDS)
        get_redis().delete(_code_key("grant", code))

    # --- tokens: remember what was issued, bind the login context to the family ---------

    def save_bearer_token(self, token, request, *args, **kwargs):
        super().save_bearer_token(token, request, *args, **kwargs)
        # Every grant (code, refresh, client credentials) saves its token here; the MAC is taken over the
        # row as stored, so it also covers DOT's path that rewrites an existing token in place.
        access = list(AccessToken.objects.filter(token_checksum=token_checksum(token["access_token"])))
        # Bound to the client's certificate when it authenticated with one (RFC 8705 §3), under the MAC.
        access_token_macs_store(access, x5t_s256=_server_side(request).get("fintech_x5t_s256", ""))
        access_ids = [row.id for row in access]
        family = None
        if token.get("refresh_token"):
            checksum = token_checksum(token["refresh_token"])
            family = RefreshToken.objects.filter(token_checksum=checksum).values_list("token_family", flat=True).first()
        _server_side(request)["fintech_issued"] = {
            "access_token_ids": access_ids,
            "token_family": str(family) if family else None,
        }
        rotated = _server_side(request).get("fintech_verified_refresh_token_id")
        if rotated is not None:
            # DOT revoked the refresh token it rotated out (verified and locked by validate_refresh_token):
            # its MAC now covers the revoked row, so the live one it was can no longer be restored.
            refresh_token_macs_store(RefreshToken.objects.filter(pk=rotated, revoked__isnull=False))
        if family and request.grant_type == "authorization_code" and request.user is not None:
            context = _server_side(request).get("fintech_auth") or {}
            session, created = OAuthSession.objects.get_or_create(
                token_family=family,
                defaults={
                    "user": request.user,
                    "client_id": request.client.client_id,
                    "authenticated_at": _parse_time(context.get("authenticated_at")) or timezone.now(),
                    "mfa_verified_at": _parse_time(context.get("mfa_verified_at")),
                },
            )
            if created:  # a fresh family: nobody else can have written its row
                oauth_session_macs_store([session])

    def _create_refresh_token(self, request, refresh_token_code, access_token, previous_refresh_token):
        """Every refresh token DOT issues (code exchange, rotation, grace-period re-issue) comes through here."""
        refresh_token = super()._create_refresh_token(request, refresh_token_code, access_token, previous_refresh_token)
        refresh_token_macs_store([refresh_token])
        return refresh_token

    def _load_access_token(self, token):
        """DOT's bearer check (userinfo): the same lookup as introspection, so a forged row is no token."""
        return access_token_find(token, lookup="oauth_validator")

    def validate_bearer_token(self, token, scopes, request):
        """DOT's bearer check (userinfo) refuses a certificate-bound token without its certificate, as /v1 does."""
        if not super().validate_bearer_token(token, scopes, request):
            return False
        if not token_certificate_matches(request.access_token, request):
            certificate_mismatch_record(request.access_token, request)
            return False
        return True

    # --- refresh: reuse detection, absolute lifetime ---------------------------------------

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        checksum = token_checksum(refresh_token)
        # Locked (the token view runs in a transaction) so the row that verifies below is the row DOT rotates.
        rows = list(RefreshToken.objects.select_for_update().filter(token_checksum=checksum).order_by("pk"))
        known = next((row for row in rows if row.application_id == client.pk), None)
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
        if not valid:
            return False
        return self._refresh_token_trusted(request.refresh_token_instance, client, request)

    def _refresh_token_trusted(self, token, client, request) -> bool:
        """The row DOT accepted passes its MAC, its family's login is on record, and that login is young enough."""
        if not refresh_token_believed(token, lookup="refresh"):
            return False
        session = oauth_session_believed(token.token_family, lookup="refresh")
        if session is None or session.user_id != token.user_id or session.client_id != client.client_id:
            # Every family starts with its session at the code exchange: without it there is no absolute lifetime.
            logger.warning(
                "refresh token family without a matching session: refused", extra={"refresh_token_id": token.pk}
            )
            return False
        if timezone.now() - session.authenticated_at > timedelta(seconds=settings.OAUTH_REFRESH_TOKEN_ABSOLUTE_SECONDS):
            RefreshToken.revoke_family(token.token_family)
            return False
        _server_side(request)["fintech_verified_refresh_token_id"] = token.pk
        return True

    # --- scopes: detokenization only for clients staff allowed it, openid only with a key ---------

    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs):
        if OPENID_SCOPE in scopes and client.algorithm == Application.NO_ALGORITHM:
            return False  # no key to sign an ID token with: refused here, not failed later
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
        context = _server_side(request).get("fintech_auth") or {}
        mfa = bool(context.get("mfa_verified_at"))
        return {
            "acr": "urn:fintech:acr:mfa" if mfa else "urn:fintech:acr:password",
            "amr": ["pwd", "otp"] if mfa else ["pwd"],
        }


def session_for_token(access_token) -> OAuthSession | None:
    """The login behind an access token: None for client-credentials tokens, or if a row on the way fails its MAC.

    Found through the refresh token issued with it (every user token the server
    issues has one, rotation included), whose MAC binds the pair and the
    family; `source_refresh_token` is not followed: no MAC covers it.
    """
    refresh = RefreshToken.objects.select_related("fintech_mac").filter(access_token=access_token).first()
    if refresh is None or not refresh.token_family:
        return None
    if not row_mac_verified("refresh_token", refresh, lookup="step_up"):
        return None
    session = oauth_session_believed(refresh.token_family, lookup="step_up")
    if session is None or session.user_id != access_token.user_id:
        return None
    return session


def as_utc_text(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None
