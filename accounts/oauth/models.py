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

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(mac__regex=r"^[0-9a-f]{64}$"), name="accounts_accesstokenmac_hex"
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
