"""Four-eyes requests carry a MAC of the request as asked (issue 12, review of ADR 0016)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0017_user_password_mac"),
        ("audit", "0007_verification_signature"),
    ]

    operations = [
        migrations.AddField(
            model_name="approvalrequest",
            name="request_mac",
            field=models.CharField(blank=True, db_default="", editable=False, max_length=64),
        ),
    ]
