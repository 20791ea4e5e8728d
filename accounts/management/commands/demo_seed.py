"""Loads demo people for `make run`: customers and two staff members per role (four eyes needs a second person).

Passwords are random, generated on first run into var/demo-logins.json (0600)
and reused afterwards, so running it twice changes nothing and no password is
ever in the repository. Refuses to run where DEMO_DATA_ALLOWED is off (production).

Staff sign in with a second factor, and outside the demo they enrol it only
from an invitation link (`accounts.invitations`). Demo staff are created here
instead (recorded as `system:demo_seed`), each with a confirmed authenticator
whose otpauth URI is kept in the same file: add it to an authenticator app.
The file is `{"passwords": {email: password}, "otpauth_uris": {email: uri}}`;
an older file holding only `{email: password}` is upgraded in place.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.util import random_hex
from oauth2_provider.models import Application

from accounts.mfa.provisioning import otpauth_uri
from accounts.mfa.services import TOTP_DEVICE_NAME
from accounts.models import User
from accounts.oauth.clients import (
    oauth_client_ensure_docs,
    oauth_client_register_mobile,
    oauth_client_register_partner,
    oauth_client_rotate_secret,
)
from accounts.roles import COMPLIANCE_OFFICER, OPERATIONS, SECURITY_ADMIN
from accounts.services import customer_create, staff_create
from audit.models import AuditEvent
from audit.services.events import Actor, audit_event_record

DEMO_CUSTOMERS = ("alice@demo.fintech.example", "bob@demo.fintech.example")
DEMO_MOBILE_APP = "Fintech Mobile (demo)"
DEMO_PARTNER = "Acme Payments (demo partner)"
DEMO_REDIRECT_URI = "http://127.0.0.1:8765/callback"
# Two of each role: four eyes (ADR 0015) needs a second person to approve what the first asks for.
DEMO_STAFF = {
    "compliance@demo.fintech.example": [COMPLIANCE_OFFICER],
    "compliance2@demo.fintech.example": [COMPLIANCE_OFFICER],
    "operations@demo.fintech.example": [OPERATIONS],
    "operations2@demo.fintech.example": [OPERATIONS],
    "security@demo.fintech.example": [SECURITY_ADMIN],
    "security2@demo.fintech.example": [SECURITY_ADMIN],
}


def _logins_file():
    return settings.VAR_DIR / "demo-logins.json"


def _logins_write(logins: dict) -> None:
    """Replace the file atomically, created 0600 (never readable by others, not even for a moment)."""
    path = _logins_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(logins, handle, indent=2)
    os.replace(temporary, path)


def _totp_uri_new(email: str) -> str:
    return otpauth_uri(TOTPDevice(key=random_hex(20)), account_label=email)


def _totp_key_from_uri(uri: str) -> str:
    """The hex key django-otp stores, from the base32 `secret` of an otpauth URI."""
    secret = parse_qs(urlsplit(uri).query)["secret"][0]
    return base64.b32decode(secret + "=" * (-len(secret) % 8)).hex()


def _load_or_create_logins() -> dict[str, dict[str, str]]:
    """{"passwords": ..., "otpauth_uris": ...}, generating what is missing; written only when something was."""
    path = _logins_file()
    stored = json.loads(path.read_text()) if path.exists() else {}
    if stored and "passwords" not in stored:
        stored = {"passwords": stored}  # the older layout: {email: password}
    logins = {"passwords": dict(stored.get("passwords", {})), "otpauth_uris": dict(stored.get("otpauth_uris", {}))}
    for email in (*DEMO_CUSTOMERS, *DEMO_STAFF):
        logins["passwords"].setdefault(email, secrets.token_urlsafe(12))
    for email in DEMO_STAFF:
        logins["otpauth_uris"].setdefault(email, _totp_uri_new(email))
    if logins != stored:
        _logins_write(logins)
    return logins


def _demo_staff_create(email: str, password: str, roles: list[str]) -> None:
    """A demo staff member, recorded as `system:demo_seed` (outside the demo, staff join by invitation only)."""
    user = staff_create(email=email, password=password, roles=roles)
    audit_event_record(
        event_type="staff.created",
        outcome=AuditEvent.Outcome.SUCCESS,
        actor=Actor.system("demo_seed"),
        object_type="accounts.user",
        object_id=str(user.public_id),
        payload={"roles": roles, "demo": True},
    )


def _demo_authenticator_ensure(user: User, uri: str) -> None:
    """The one confirmed authenticator of a demo staff member holds the secret in the logins file."""
    key = _totp_key_from_uri(uri)
    if TOTPDevice.objects.filter(user=user, confirmed=True, key=key).exists():
        return
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, key=key, confirmed=True)


class Command(BaseCommand):
    help = "Create demo customers and staff (idempotent) and print how to log in."

    def handle(self, *args, **options):
        if not settings.DEMO_DATA_ALLOWED:
            raise CommandError("Demo data is disabled in this environment (DEMO_DATA_ALLOWED is off).")
        logins = _load_or_create_logins()
        passwords, uris = logins["passwords"], logins["otpauth_uris"]
        for email in DEMO_CUSTOMERS:
            if not User.objects.filter(email=email).exists():
                customer_create(email=email, password=passwords[email])
        for email, roles in DEMO_STAFF.items():
            if not User.objects.filter(email=email).exists():
                _demo_staff_create(email, passwords[email], roles)
        # Another checkout may have created these users against the same database:
        # the printed passwords (and authenticator secrets) must be the ones that work.
        for user in User.objects.filter(email__in=passwords):
            if not user.check_password(passwords[user.email]):
                user.set_password(passwords[user.email])
                user.save(update_fields=["password"])
            if user.email in DEMO_STAFF:
                _demo_authenticator_ensure(user, uris[user.email])

        clients = self._demo_clients()
        base = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS("Fintech back office is starting:"))
        self.stdout.write(f"  API docs      {base}/v1/docs")
        self.stdout.write(f"  Admin         {base}/{settings.ADMIN_URL}")
        self.stdout.write(f"  Customer login {base}/accounts/login/")
        self.stdout.write(f"  Health        {base}/healthz   {base}/readyz   {base}/metrics")
        self.stdout.write("Demo logins (passwords generated on first run, kept in var/demo-logins.json):")
        for email in (*DEMO_CUSTOMERS, *DEMO_STAFF):
            role = ", ".join(DEMO_STAFF.get(email, ["customer"]))
            self.stdout.write(f"  {email:<36} {passwords[email]:<20} {role}")
        self.stdout.write("Staff must also add their otpauth URI to an authenticator app (in the same file):")
        for email in DEMO_STAFF:
            self.stdout.write(f"  {email:<36} {uris[email]}")
        self.stdout.write("OAuth clients (see README, 'Try the OAuth flow'):")
        self.stdout.write(f"  mobile app (public, PKCE)   client_id={clients['mobile_client_id']}")
        self.stdout.write(f"                              redirect_uri={DEMO_REDIRECT_URI}")
        self.stdout.write(f"  partner (confidential)      client_id={clients['partner_client_id']}")
        self.stdout.write("                              client_secret in var/demo-oauth-clients.json")
        self.stdout.write(f"  API docs (public, PKCE)     client_id={clients['docs_client_id']}")
        self.stdout.write(f"                              Authorize on {base}/v1/docs")
        self.stdout.write("")

    def _demo_clients(self) -> dict[str, str]:
        """The demo mobile app and partner, created once; the partner secret is kept in var/ (0600)."""
        path = settings.VAR_DIR / "demo-oauth-clients.json"
        stored = json.loads(path.read_text()) if path.exists() else {}
        actor = Actor.system("demo_seed")
        mobile = Application.objects.filter(name=DEMO_MOBILE_APP).first() or oauth_client_register_mobile(
            name=DEMO_MOBILE_APP, redirect_uris=[DEMO_REDIRECT_URI], actor=actor
        )
        partner = Application.objects.filter(name=DEMO_PARTNER).first()
        if partner is None:
            partner, stored["partner_client_secret"] = oauth_client_register_partner(
                name=DEMO_PARTNER, can_introspect=True, actor=actor
            )
        elif "partner_client_secret" not in stored:
            # Created from another checkout whose var/ holds the secret: issue a new one.
            stored["partner_client_secret"] = oauth_client_rotate_secret(application=partner, actor=actor)
        # Swagger UI's "Authorize" on /v1/docs (settings.swagger_ui_oauth): its redirect on this run's issuer.
        docs = oauth_client_ensure_docs(
            client_id=settings.DOCS_OAUTH_CLIENT_ID,
            redirect_uri=settings.SPECTACULAR_SETTINGS["SWAGGER_UI_SETTINGS"]["oauth2RedirectUrl"],
            actor=actor,
        )
        stored["docs_client_id"] = docs.client_id
        stored["mobile_client_id"] = mobile.client_id
        stored["partner_client_id"] = partner.client_id
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(stored, handle, indent=2)
        return stored
