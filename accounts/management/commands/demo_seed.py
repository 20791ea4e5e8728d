"""Loads demo people for `make run`: customers and one staff member per role.

Passwords are random, generated on first run into var/demo-logins.txt (0600)
and reused afterwards, so running it twice changes nothing and no password is
ever in the repository. Refuses to run where DEMO_DATA_ALLOWED is off (production).
"""

from __future__ import annotations

import json
import os
import secrets

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from oauth2_provider.models import Application

from accounts.models import User
from accounts.oauth.clients import (
    oauth_client_register_mobile,
    oauth_client_register_partner,
    oauth_client_rotate_secret,
)
from accounts.roles import COMPLIANCE_OFFICER, OPERATIONS, SECURITY_ADMIN
from accounts.services import customer_create, staff_create
from audit.services.events import Actor

DEMO_CUSTOMERS = ("alice@demo.fintech.example", "bob@demo.fintech.example")
DEMO_MOBILE_APP = "Fintech Mobile (demo)"
DEMO_PARTNER = "Acme Payments (demo partner)"
DEMO_REDIRECT_URI = "http://127.0.0.1:8765/callback"
DEMO_STAFF = {
    "compliance@demo.fintech.example": [COMPLIANCE_OFFICER],
    "operations@demo.fintech.example": [OPERATIONS],
    "security@demo.fintech.example": [SECURITY_ADMIN],
}


def _logins_file():
    return settings.VAR_DIR / "demo-logins.json"


def _load_or_create_passwords() -> dict[str, str]:
    path = _logins_file()
    if path.exists():
        return json.loads(path.read_text())
    passwords = {email: secrets.token_urlsafe(12) for email in (*DEMO_CUSTOMERS, *DEMO_STAFF)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(passwords, handle, indent=2)
    return passwords


class Command(BaseCommand):
    help = "Create demo customers and staff (idempotent) and print how to log in."

    def handle(self, *args, **options):
        if not settings.DEMO_DATA_ALLOWED:
            raise CommandError("Demo data is disabled in this environment (DEMO_DATA_ALLOWED is off).")
        passwords = _load_or_create_passwords()
        for email in DEMO_CUSTOMERS:
            if not User.objects.filter(email=email).exists():
                customer_create(email=email, password=passwords[email])
        for email, roles in DEMO_STAFF.items():
            if not User.objects.filter(email=email).exists():
                staff_create(email=email, password=passwords[email], roles=roles)
        # Another checkout may have created these users against the same database:
        # the printed passwords must be the ones that work.
        for user in User.objects.filter(email__in=passwords):
            if not user.check_password(passwords[user.email]):
                user.set_password(passwords[user.email])
                user.save(update_fields=["password"])

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
        self.stdout.write("OAuth clients (see README, 'Try the OAuth flow'):")
        self.stdout.write(f"  mobile app (public, PKCE)   client_id={clients['mobile_client_id']}")
        self.stdout.write(f"                              redirect_uri={DEMO_REDIRECT_URI}")
        self.stdout.write(f"  partner (confidential)      client_id={clients['partner_client_id']}")
        self.stdout.write("                              client_secret in var/demo-oauth-clients.json")
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
        stored["mobile_client_id"] = mobile.client_id
        stored["partner_client_id"] = partner.client_id
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(stored, handle, indent=2)
        return stored
