"""The admin index's role guide: for each staff role, the few pages its work starts from.

The stock index lists every model alphabetically, which tells a compliance
officer on their first day nothing about where the review queue is. The
guide is declared here, in code next to `accounts.roles`, and each link is
shown only to someone holding its view permission, so nobody is sent to a
page that answers 403. URL names are resolved per request: this module is
imported by the admin site while apps load and touches no model.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse

from accounts.roles import COMPLIANCE_OFFICER, OPERATIONS, SECURITY_ADMIN


@dataclass(frozen=True, slots=True)
class GuideLink:
    label: str
    url_name: str
    permission: str  # needed to see the link: the page's own view permission
    why: str


@dataclass(frozen=True, slots=True)
class GuideSection:
    role: str
    title: str
    links: tuple[GuideLink, ...]


ROLE_GUIDE: tuple[GuideSection, ...] = (
    GuideSection(
        COMPLIANCE_OFFICER,
        "Compliance officers",
        (
            GuideLink("Review cases", "admin:ledger_reviewcase_changelist", "ledger.view_reviewcase",
                      "transfers held for review: approve or reject"),
            GuideLink("Approval requests", "admin:accounts_approvalrequest_changelist",
                      "accounts.view_approvalrequest", "customer unblocks, tiers, second factors to decide"),
            GuideLink("Audit events", "admin:audit_auditevent_changelist", "audit.view_auditevent",
                      "the masked trail; unmasking asks for a reason"),
            GuideLink("Audit verifications", "admin:audit_auditverification_changelist",
                      "audit.view_auditverification", "did the sealed trail verify"),
        ),
    ),
    GuideSection(
        OPERATIONS,
        "Operations and support",
        (
            GuideLink("Customer profiles", "admin:accounts_customerprofile_changelist",
                      "accounts.view_customerprofile", "find a customer, block, ask for a tier change"),
            GuideLink("Ledger accounts", "admin:ledger_ledgeraccount_changelist", "ledger.view_ledgeraccount",
                      "balances and holds"),
            GuideLink("Transfers", "admin:ledger_transfer_changelist", "ledger.view_transfer",
                      "what moved, pending or not executed"),
            GuideLink("Transfer limits", "admin:ledger_transferlimit_changelist", "ledger.view_transferlimit",
                      "per tier and currency; Save asks a second person"),
            GuideLink("Transfer rules", "admin:ledger_transferrule_changelist", "ledger.view_transferrule",
                      "review thresholds and velocity"),
        ),
    ),
    GuideSection(
        SECURITY_ADMIN,
        "Security admins",
        (
            GuideLink("Users", "admin:accounts_user_changelist", "accounts.view_user",
                      "staff and their roles (changes are approval requests)"),
            GuideLink("Invite a staff member", "admin:accounts_approvalrequest_invite", "accounts.change_user",
                      "asks another security admin"),
            GuideLink("Approval requests", "admin:accounts_approvalrequest_changelist",
                      "accounts.view_approvalrequest", "access, invitations and key changes to decide"),
            GuideLink("OAuth client policies", "admin:accounts_oauthclientpolicy_changelist",
                      "accounts.view_oauthclientpolicy", "introspection, webhooks, detokenizable types"),
            GuideLink("Partner API keys", "admin:accounts_partnerapikey_changelist", "accounts.view_partnerapikey",
                      "issued keys and their last use"),
        ),
    ),
)  # fmt: skip


def role_guide_for(user) -> list[dict]:
    """The guide as the index template shows it: every section, with links only for the roles `user` holds.

    Roles share view permissions (support and compliance both read
    customers), so a section is filled by holding the role (a superuser holds
    every one), then each link by its permission. A section of a role the
    viewer does not hold still names it, saying so, rather than vanishing.
    """
    held = set(user.groups.values_list("name", flat=True))
    sections = []
    for section in ROLE_GUIDE:
        links = []
        for link in section.links:
            if not (user.is_superuser or section.role in held) or not user.has_perm(link.permission):
                continue
            try:
                url = reverse(link.url_name)
            except NoReverseMatch:  # a model not registered in this process's admin
                continue
            links.append({"label": link.label, "url": url, "why": link.why})
        sections.append({"role": section.role, "title": section.title, "links": links})
    return sections
