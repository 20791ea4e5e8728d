"""Registering OAuth clients: mobile apps (public, PKCE) and partner servers (confidential).

Redirect URIs must be https, except loopback http for native apps (RFC 8252
§7.3); no wildcards, matched exactly by DOT.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import transaction
from oauth2_provider.models import Application

from accounts.models import OAuthClientPolicy
from audit.models import AuditEvent
from audit.services.events import Actor, audit_event_record

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "[::1]", "::1", "localhost"})


CLIENT_ID_MAX_LENGTH = 100  # DOT's column


def client_id_possible(client_id) -> bool:
    """Whether a presented client id could name a client at all: a string without NUL (PostgreSQL refuses it: a
    500) and no longer than the column. Anything else is an unknown client, without a query."""
    return isinstance(client_id, str) and "\x00" not in client_id and 0 < len(client_id) <= CLIENT_ID_MAX_LENGTH


def redirect_uri_validate(uri: str) -> None:
    parts = urlsplit(uri)
    if parts.fragment or "*" in uri:
        raise ValidationError(f"Redirect URI {uri!r} may not contain a fragment or a wildcard.")
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return
    raise ValidationError(f"Redirect URI {uri!r} must be https, or http on a loopback address for native apps.")


def oauth_client_register_mobile(*, name: str, redirect_uris: list[str], actor: Actor) -> Application:
    """A public client (no secret) for a mobile or native app: authorization code + PKCE only."""
    for uri in redirect_uris:
        redirect_uri_validate(uri)
    with transaction.atomic():
        application = Application.objects.create(
            name=name,
            client_type=Application.CLIENT_PUBLIC,
            authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
            redirect_uris=" ".join(redirect_uris),
            algorithm=Application.RS256_ALGORITHM,
            skip_authorization=False,
        )
        OAuthClientPolicy.objects.create(application=application)
        audit_event_record(
            event_type="oauth.client_registered",
            outcome=AuditEvent.Outcome.SUCCESS,
            actor=actor,
            object_type="oauth.client",
            object_id=application.client_id,
            payload={"kind": "mobile"},
        )
    return application


def oauth_client_ensure_docs(*, client_id: str, redirect_uri: str, actor: Actor) -> Application:
    """The API docs page's client (Swagger UI "Authorize"): public, authorization code + PKCE, a fixed id.

    The id is fixed because Swagger UI's settings name it before any database
    exists; a public client has no secret, so a known id gives nothing away.
    Idempotent: run by `demo_seed` on every `make run`, it adds the redirect
    of the current issuer (another PORT) to the ones registered, and records
    only what it changed.
    """
    redirect_uri_validate(redirect_uri)
    with transaction.atomic():
        application = Application.objects.select_for_update().filter(client_id=client_id).first()
        if application is None:
            application = Application.objects.create(
                client_id=client_id,
                name="API docs (Swagger UI)",
                client_type=Application.CLIENT_PUBLIC,
                authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
                redirect_uris=redirect_uri,
                algorithm=Application.RS256_ALGORITHM,
                skip_authorization=False,
            )
            OAuthClientPolicy.objects.create(application=application)
            event, payload = "oauth.client_registered", {"kind": "docs"}
        elif redirect_uri not in application.redirect_uris.split():
            application.redirect_uris = " ".join([*application.redirect_uris.split(), redirect_uri])
            application.save(update_fields=["redirect_uris"])
            event, payload = "oauth.client_redirect_added", {"kind": "docs", "redirect_uri": redirect_uri}
        else:
            return application
        audit_event_record(
            event_type=event,
            outcome=AuditEvent.Outcome.SUCCESS,
            actor=actor,
            object_type="oauth.client",
            object_id=application.client_id,
            payload=payload,
        )
    return application


def oauth_client_register_partner(*, name: str, can_introspect: bool, actor: Actor) -> tuple[Application, str]:
    """A confidential client for a partner server (client credentials). The secret is returned once."""
    secret = secrets.token_urlsafe(40)
    with transaction.atomic():
        application = Application.objects.create(
            name=name,
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
            client_secret=secret,
            hash_client_secret=True,
        )
        OAuthClientPolicy.objects.create(application=application, can_introspect=can_introspect)
        audit_event_record(
            event_type="oauth.client_registered",
            outcome=AuditEvent.Outcome.SUCCESS,
            actor=actor,
            object_type="oauth.client",
            object_id=application.client_id,
            payload={"kind": "partner", "can_introspect": can_introspect},
        )
    return application, secret


def oauth_client_rotate_secret(*, application: Application, actor: Actor) -> str:
    """A new secret for a confidential client, returned once; the old one stops working at once."""
    if application.client_type != Application.CLIENT_CONFIDENTIAL:
        raise ValidationError("Only confidential clients have a secret.")
    secret = secrets.token_urlsafe(40)
    with transaction.atomic():
        application.client_secret = secret
        application.hash_client_secret = True
        application.save(update_fields=["client_secret", "hash_client_secret"])
        audit_event_record(
            event_type="oauth.client_secret_rotated",
            outcome=AuditEvent.Outcome.SUCCESS,
            actor=actor,
            object_type="oauth.client",
            object_id=application.client_id,
        )
    return secret
