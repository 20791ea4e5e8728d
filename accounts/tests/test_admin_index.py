"""The admin carries the platform's name, and its index sends each staff role to where its work is."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.urls import reverse

from accounts.roles import COMPLIANCE_OFFICER, OPERATIONS, SECURITY_ADMIN
from accounts.services import staff_create
from accounts.tests.mfa_helpers import force_login_with_mfa

pytestmark = pytest.mark.django_db


def index_for(client, roles: list[str]) -> str:
    user = staff_create(email=f"{'-'.join(roles) or 'none'}@example.com", password=None, roles=roles)
    force_login_with_mfa(client, user)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    return response.content.decode()


def section(html: str, role: str) -> str:
    match = re.search(rf'<section class="role-guide-section" data-role="{role}">(.*?)</section>', html, re.S)
    assert match, f"no guide section for {role}"
    return match.group(1)


def test_the_admin_is_named_after_the_platform():
    assert admin.site.site_header == "Fintech back office"
    assert "Django" not in admin.site.site_title and "Django" not in admin.site.index_title


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (COMPLIANCE_OFFICER, ["admin:ledger_reviewcase_changelist", "admin:audit_auditevent_changelist"]),
        (OPERATIONS, ["admin:ledger_transferlimit_changelist", "admin:accounts_customerprofile_changelist"]),
        (SECURITY_ADMIN, ["admin:accounts_user_changelist", "admin:accounts_approvalrequest_invite"]),
    ],
)
def test_each_role_finds_its_pages_on_the_index_and_every_link_opens(client, role, expected):
    html = index_for(client, [role])

    assert "<title>Site administration of the Fintech back office | Fintech back office admin</title>" in html
    assert "Fintech back office</a>" in html  # the header
    own = section(html, role)
    for url_name in expected:
        assert f'href="{reverse(url_name)}"' in own
    for other in {COMPLIANCE_OFFICER, OPERATIONS, SECURITY_ADMIN} - {role}:
        assert "Not in your roles." in section(html, other) and "href" not in section(html, other)
    for url in re.findall(r'<section class="role-guide-section".*?</section>', html, re.S):
        for href in re.findall(r'href="([^"]+)"', url):
            assert client.get(href).status_code == 200, href  # nobody is sent to a 403
