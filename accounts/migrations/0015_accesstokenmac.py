"""Access token rows carry a MAC under a key the database does not hold (issue 12, item 5).

Tokens issued before this migration get their MAC computed here, with the
settings the application runs with (the key is derived from DJANGO_SECRET_KEY),
so nobody signed in is signed out. Only unexpired tokens: an expired one is
refused anyway. This trusts the table as it is when the migration runs.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone


def mac_existing_tokens(apps, schema_editor):
    from accounts.oauth.token_macs import access_token_mac

    AccessToken = apps.get_model(settings.OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL)
    AccessTokenMac = apps.get_model("accounts", "AccessTokenMac")
    alias = schema_editor.connection.alias
    tokens = AccessToken.objects.using(alias).filter(expires__gt=timezone.now(), fintech_mac__isnull=True)
    batch = []
    for token in tokens.iterator(chunk_size=2000):
        batch.append(AccessTokenMac(access_token_id=token.pk, mac=access_token_mac(token)))
        if len(batch) == 2000:
            AccessTokenMac.objects.using(alias).bulk_create(batch)
            batch = []
    AccessTokenMac.objects.using(alias).bulk_create(batch)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0014_encryption_key_permission"),
        migrations.swappable_dependency(settings.OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL),
        ("oauth2_provider", "0022_refreshtoken_token_family_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="AccessTokenMac",
            fields=[
                (
                    "access_token",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="fintech_mac",
                        serialize=False,
                        to=settings.OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL,
                    ),
                ),
                ("mac", models.CharField(max_length=64)),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("mac__regex", "^[0-9a-f]{64}$")), name="accounts_accesstokenmac_hex"
                    )
                ],
            },
        ),
        migrations.RunPython(mac_existing_tokens, migrations.RunPython.noop),
    ]
