"""A user's password hash carries a MAC (issue 12, ADR 0016: `accounts.password_macs`).

Every user existing when this runs gets the MAC of their current hash, with the
settings the application runs with (the key is derived from DJANGO_SECRET_KEY),
so nobody is locked out. This trusts the table as it is when it runs.
"""

from django.db import migrations, models

BATCH = 2000


def mac_existing_passwords(apps, schema_editor):
    from accounts.password_macs import password_mac

    alias = schema_editor.connection.alias
    User = apps.get_model("accounts", "User")
    batch = []
    for user in User.objects.using(alias).only("pk", "password").iterator(chunk_size=BATCH):
        user.password_mac = password_mac(user.pk, user.password)
        batch.append(user)
        if len(batch) == BATCH:
            User.objects.using(alias).bulk_update(batch, ["password_mac"])
            batch = []
    User.objects.using(alias).bulk_update(batch, ["password_mac"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0016_oauth_row_macs"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="password_mac",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
        ),
        migrations.RunPython(mac_existing_passwords, migrations.RunPython.noop),
    ]
