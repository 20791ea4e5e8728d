from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_migrate


def _sync_roles(sender, using="default", **kwargs) -> None:
    if using != "default":
        return
    from accounts.services import roles_sync

    roles_sync()


class AccountsConfig(AppConfig):
    name = "accounts"
    # A request decided once stays decided: its decision row cannot be deleted by the runtime role (issue 12).
    write_once_models = ("ApprovalDecision",)
    # Fields holding token vault tokens: the orphan reaper (tokenvault/services/reaper.py) never
    # shreds a token one of them holds. A new field that stores a vault token must be listed here.
    vault_token_fields = (("PaymentCard", "token"), ("CustomerProfile", "national_id_token"))

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from accounts import schema  # noqa: F401 - registers the OpenAPI security scheme
        from accounts.models import CustomerProfile, User

        # Model changes of people are logged (and mirrored into the sealed trail);
        # the email is masked entirely, the password hash (and its MAC) never logged.
        auditlog.register(User, exclude_fields=["password", "password_mac", "last_login"], mask_fields=["email"])
        # Identity fields are ciphertext (their str() is a fixed mask anyway); the change log
        # says which changed, never to what - not even the blind index or the vault token.
        auditlog.register(
            CustomerProfile,
            mask_fields=[
                "full_name",
                "date_of_birth",
                "phone",
                "phone_index",
                "postal_address",
                "credit_score",
                "national_id_token",
            ],
        )
        from django.apps import apps

        if settings.SERVICE_ROLE != "vault":
            # Four eyes (ADR 0015): the kinds of change a second person approves. Not in the vault role,
            # which has no admin, no sessions and cannot read the main database's staff.
            from accounts.approvals import (
                kinds_access,
                kinds_client_certificates,
                kinds_clients,
                kinds_customers,
                kinds_keys,
                kinds_staff,
            )

            kinds_access.register()  # staff roles, flags and permissions
            kinds_clients.register()  # partner client policies
            kinds_client_certificates.register()  # the certificate a partner client authenticates with (RFC 8705)
            kinds_customers.register()  # unblocking, tier, a customer's lost second factor
            kinds_staff.register()  # inviting staff, resetting a staff member's second factor
            kinds_keys.register()  # retiring a field-encryption key version

        from accounts.operator_auth import operator_credentials_check
        from fintech.operators import operator_authenticator_register

        # Commands that change state authenticate their operator; fintech holds only the interface.
        operator_authenticator_register(operator_credentials_check)
        # Sent for the platform app, listed last: every app's permissions exist by then.
        post_migrate.connect(_sync_roles, sender=apps.get_app_config("fintech"), dispatch_uid="accounts.roles_sync")
