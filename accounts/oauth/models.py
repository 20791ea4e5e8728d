"""The MAC of each access token, refresh token, authorization code and OAuth session row (issue 12, item 5).

Kept beside the tables they vouch for (DOT's, and `accounts.OAuthSession`).
Imported by `accounts.models` so Django finds the models.
"""

from __future__ import annotations

from django.db import models


class AccessTokenMac(models.Model):
    """An HMAC over what an access token row grants, under a key derived from the Django secret.

    A side table, not a column: DOT's AccessToken is swappable, but swapping it
    in a project that already has token rows means moving DOT's tables and
    every foreign key to them. One row per token, deleted with it (the ORM
    cascades; DOT and the project only ever delete tokens through the ORM).
    A token without a row here, or whose row does not verify, is refused by
    every lookup (`accounts.oauth.token_macs`).
    """

    access_token = models.OneToOneField(
        "oauth2_provider.AccessToken", on_delete=models.CASCADE, primary_key=True, related_name="fintech_mac"
    )
    mac = models.CharField(max_length=64)
    # RFC 8705 certificate binding (`cnf.x5t#S256`): the token is good only over a TLS connection presenting
    # this certificate. Here, under the MAC, so the database login cannot unbind a token; "" for unbound tokens.
    x5t_s256 = models.CharField(max_length=43, blank=True, default="", db_default="")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(mac__regex=r"^[0-9a-f]{64}$"), name="accounts_accesstokenmac_hex"
            ),
            models.CheckConstraint(
                condition=models.Q(x5t_s256="") | models.Q(x5t_s256__regex=r"^[A-Za-z0-9_-]{43}$"),
                name="accounts_accesstokenmac_x5t_s256_base64url",
            ),
        ]

    def __str__(self) -> str:
        return f"MAC of access token {self.access_token_id}"


class RefreshTokenMac(models.Model):
    """An HMAC over what a refresh token row lets its holder mint (issue 12): `accounts.oauth.row_macs`.

    The refresh grant turns a refresh token row into a freshly MAC'd access
    token, so a row written with the database login alone must be refused there
    as an access token row is at the resource server. Covers `revoked` too, so a
    revoked row put back to life no longer verifies.
    """

    refresh_token = models.OneToOneField(
        "oauth2_provider.RefreshToken", on_delete=models.CASCADE, primary_key=True, related_name="fintech_mac"
    )
    mac = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(mac__regex=r"^[0-9a-f]{64}$"), name="accounts_refreshtokenmac_hex"
            ),
        ]

    def __str__(self) -> str:
        return f"MAC of refresh token {self.refresh_token_id}"


class GrantMac(models.Model):
    """An HMAC over an authorization code row (issue 12): user, client, PKCE challenge, redirect, scope, expiry.

    Without it, a `Grant` row inserted with a PKCE challenge of one's own is an
    authorization code for anyone, and the token endpoint mints tokens from it.
    """

    grant = models.OneToOneField(
        "oauth2_provider.Grant", on_delete=models.CASCADE, primary_key=True, related_name="fintech_mac"
    )
    mac = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(mac__regex=r"^[0-9a-f]{64}$"), name="accounts_grantmac_hex"),
        ]

    def __str__(self) -> str:
        return f"MAC of grant {self.grant_id}"


class OAuthSessionMac(models.Model):
    """An HMAC over a login behind a refresh-token family (issue 12): its user, client and times.

    Step-up reads `mfa_verified_at` and the refresh grant's absolute lifetime
    counts from `authenticated_at`: rewriting either must not pass for a second
    factor or a fresh login.
    """

    session = models.OneToOneField(
        "accounts.OAuthSession", on_delete=models.CASCADE, primary_key=True, related_name="fintech_mac"
    )
    mac = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(mac__regex=r"^[0-9a-f]{64}$"), name="accounts_oauthsessionmac_hex"
            ),
        ]

    def __str__(self) -> str:
        return f"MAC of oauth session {self.session_id}"


class OAuthClientCertificate(models.Model):
    """The certificate a partner client authenticates with (RFC 8705 `self_signed_tls_client_auth`), pinned.

    Written only by an approved four-eyes request (`accounts.approvals.kinds_client_certificates`), and MAC'd
    with that request's id under a key the database does not hold: the database login alone can neither pin a
    certificate of its own nor move a pin to another client. One per client; a new pin replaces it.
    """

    application = models.OneToOneField(
        "oauth2_provider.Application", on_delete=models.CASCADE, related_name="tls_client_certificate"
    )
    # base64url SHA-256 of the DER certificate; one client per certificate, so a thumbprint names one client
    x5t_s256 = models.CharField(max_length=43, unique=True)
    certificate_pem = models.TextField()
    subject = models.CharField(max_length=500)
    not_after = models.DateTimeField()
    approval_public_id = models.UUIDField()
    mac = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "OAuth client certificate"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(x5t_s256__regex=r"^[A-Za-z0-9_-]{43}$"), name="accounts_clientcert_x5t_base64url"
            ),
            models.CheckConstraint(
                condition=models.Q(mac__regex=r"^[0-9a-f]{64}$"), name="accounts_clientcert_mac_hex"
            ),
        ]

    def __str__(self) -> str:
        return f"certificate {self.x5t_s256[:12]}… of client {self.application_id}"
