"""Staff roles: Django groups whose permissions are declared here, in code.

`roles_sync` (run after every migrate) makes the database match this table,
so a permission added by a later app lands in the role that needs it and a
permission removed here is taken away. Permissions of apps not migrated yet
are skipped and picked up on the next migrate.
"""

COMPLIANCE_OFFICER = "compliance_officer"
OPERATIONS = "operations"
SECURITY_ADMIN = "security_admin"

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    # Reads customers and the audit trail; may unmask an actor there, each unmask recorded with purpose and reason;
    # works the review queue: approves or rejects review cases, each decision recorded with its reason.
    COMPLIANCE_OFFICER: frozenset(
        {
            "accounts.view_user",
            "accounts.view_customerprofile",
            "accounts.view_paymentcard",
            "audit.view_auditevent",
            "audit.view_auditcheckpoint",
            "audit.view_auditverification",
            "audit.view_auditarchive",
            "audit.unmask_pii",
            "ledger.view_ledgeraccount",
            "ledger.view_transfer",
            "ledger.view_hold",
            "ledger.view_reviewcase",
            "ledger.decide_reviewcase",
            "accounts.view_approvalrequest",
            "accounts.approve_customer_change",
        }
    ),
    # Day-to-day customer servicing.
    OPERATIONS: frozenset(
        {
            "accounts.view_user",
            "accounts.view_customerprofile",
            "accounts.change_customerprofile",
            "accounts.view_paymentcard",
            "ledger.view_ledgeraccount",
            "ledger.view_transfer",
            "ledger.view_hold",
            "ledger.view_transferlimit",
            "ledger.change_transferlimit",
            "ledger.view_transferrule",
            "ledger.change_transferrule",
            "accounts.view_approvalrequest",
            "accounts.approve_money_change",
            "accounts.deposit_from_funding",
        }
    ),
    # Manages staff access: users and their groups.
    SECURITY_ADMIN: frozenset(
        {
            "accounts.view_user",
            "accounts.change_user",
            "auth.view_group",
            "auth.view_permission",
            "audit.view_auditevent",
            "accounts.view_partnerapikey",
            "accounts.add_partnerapikey",
            "accounts.revoke_partnerapikey",
            # Four eyes (ADR 0015): asks for and approves access changes, never both on one request.
            "accounts.view_approvalrequest",
            "accounts.approve_access_change",
            "accounts.approve_client_change",
            "accounts.view_oauthclientpolicy",
            "accounts.change_oauthclientpolicy",
            "accounts.manage_encryption_keys",
            # The platform CA (issue 14, ADR 0018): the certificates page, and cert_issue/renew/revoke.
            "pki.view_certificate",
            "pki.manage_certificates",
        }
    ),
}
