"""Refresh tokens, authorization codes and OAuth sessions carry a MAC too (issue 12, item 5).

Rows that are live when this runs get their MAC here, with the settings the
application runs with (the key is derived from DJANGO_SECRET_KEY), so nobody
signed in is signed out: unrevoked refresh tokens, the access tokens they are
paired with that still lack a MAC (0015 skipped expired ones, and a refresh is
what follows an expired access token), unexpired authorization codes, and the
sessions of families that still have a live refresh token. Revoked and expired
rows are refused anyway. This trusts the tables as they are when it runs.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone
from oauth2_provider.settings import oauth2_settings  # DOT's swappable models are not Django settings unless set

BATCH = 2000


def _store(kind, rows, model, alias):
    from accounts.oauth.row_macs import row_macs_store

    batch = []
    for row in rows.iterator(chunk_size=BATCH):
        batch.append(row)
        if len(batch) == BATCH:
            row_macs_store(kind, batch, model=model, using=alias)
            batch = []
    row_macs_store(kind, batch, model=model, using=alias)


def mac_live_rows(apps, schema_editor):
    from accounts.oauth.token_macs import access_token_mac

    alias = schema_editor.connection.alias
    RefreshToken = apps.get_model(oauth2_settings.REFRESH_TOKEN_MODEL)
    AccessToken = apps.get_model(settings.OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL)
    Grant = apps.get_model(oauth2_settings.GRANT_MODEL)
    OAuthSession = apps.get_model("accounts", "OAuthSession")
    AccessTokenMac = apps.get_model("accounts", "AccessTokenMac")

    live = RefreshToken.objects.using(alias).filter(revoked__isnull=True)
    _store("refresh_token", live, apps.get_model("accounts", "RefreshTokenMac"), alias)
    paired = AccessToken.objects.using(alias).filter(
        pk__in=live.filter(access_token__isnull=False).values("access_token_id"), fintech_mac__isnull=True
    )
    macs = [AccessTokenMac(access_token_id=token.pk, mac=access_token_mac(token)) for token in paired.iterator()]
    AccessTokenMac.objects.using(alias).bulk_create(macs, batch_size=BATCH)
    grants = Grant.objects.using(alias).filter(expires__gt=timezone.now())
    _store("grant", grants, apps.get_model("accounts", "GrantMac"), alias)
    sessions = OAuthSession.objects.using(alias).filter(token_family__in=live.values("token_family"))
    _store("session", sessions, apps.get_model("accounts", "OAuthSessionMac"), alias)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0015_accesstokenmac"),
        migrations.swappable_dependency(oauth2_settings.REFRESH_TOKEN_MODEL),
        migrations.swappable_dependency(oauth2_settings.GRANT_MODEL),
        ("oauth2_provider", "0022_refreshtoken_token_family_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="GrantMac",
            fields=[
                (
                    "grant",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="fintech_mac",
                        serialize=False,
                        to=oauth2_settings.GRANT_MODEL,
                    ),
                ),
                ("mac", models.CharField(max_length=64)),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("mac__regex", "^[0-9a-f]{64}$")), name="accounts_grantmac_hex"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="OAuthSessionMac",
            fields=[
                (
                    "session",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="fintech_mac",
                        serialize=False,
                        to="accounts.oauthsession",
                    ),
                ),
                ("mac", models.CharField(max_length=64)),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("mac__regex", "^[0-9a-f]{64}$")), name="accounts_oauthsessionmac_hex"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="RefreshTokenMac",
            fields=[
                (
                    "refresh_token",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="fintech_mac",
                        serialize=False,
                        to=oauth2_settings.REFRESH_TOKEN_MODEL,
                    ),
                ),
                ("mac", models.CharField(max_length=64)),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("mac__regex", "^[0-9a-f]{64}$")), name="accounts_refreshtokenmac_hex"
                    )
                ],
            },
        ),
        migrations.RunPython(mac_live_rows, migrations.RunPython.noop),
    ]
