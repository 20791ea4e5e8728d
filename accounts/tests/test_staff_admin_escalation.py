"""Staff access in the admin: a security admin assigns roles, but cannot make anyone a superuser or hand out
single permissions such as `tokenvault.detokenize_national_id` (ADR 0012: no role grants them; only a
superuser may), not even to themselves."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client

from accounts.models import User
from accounts.services import staff_create
from accounts.tests.mfa_helpers import force_login_with_mfa


def _change_form(user: User, **fields) -> dict:
    return {
        "email": user.email,
        "is_active": "on",
        "is_staff": "on",
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        **fields,
    }


@pytest.mark.django_db
def test_a_security_admin_assigns_roles_but_cannot_grant_superuser_or_a_detokenize_permission():
    admin_user = staff_create(
        email=f"sec.{uuid.uuid4().hex[:8]}@fintech.example", password=None, roles=["security_admin"]
    )
    colleague = staff_create(email=f"col.{uuid.uuid4().hex[:8]}@fintech.example", password=None, roles=[])
    detokenize = Permission.objects.get(content_type__app_label="tokenvault", codename="detokenize_national_id")
    operations = Group.objects.get(name="operations")
    client = Client()
    force_login_with_mfa(client, admin_user)

    own_role = Group.objects.get(name="security_admin")
    for target, role in ((colleague, operations), (admin_user, own_role)):
        response = client.post(
            f"/admin/accounts/user/{target.pk}/change/",
            _change_form(target, is_superuser="on", user_permissions=[detokenize.pk], groups=[role.pk]),
        )
        assert response.status_code == 302, response.content.decode()[:3000]

    colleague.refresh_from_db()
    admin_user.refresh_from_db()
    assert list(colleague.groups.values_list("name", flat=True)) == ["operations"]
    for target in (admin_user, colleague):
        fresh = User.objects.get(pk=target.pk)  # no cached permissions
        assert fresh.is_superuser is False
        assert not fresh.user_permissions.exists()
        assert not fresh.has_perm("tokenvault.detokenize_national_id")


@pytest.mark.django_db
def test_a_security_admin_cannot_give_itself_another_role():
    admin_user = staff_create(
        email=f"sec.{uuid.uuid4().hex[:8]}@fintech.example", password=None, roles=["security_admin"]
    )
    compliance = Group.objects.get(name="compliance_officer")
    own_role = Group.objects.get(name="security_admin")
    client = Client()
    force_login_with_mfa(client, admin_user)

    response = client.post(
        f"/admin/accounts/user/{admin_user.pk}/change/",
        _change_form(admin_user, groups=[own_role.pk, compliance.pk]),
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    assert list(admin_user.groups.values_list("name", flat=True)) == ["security_admin"]
    assert not User.objects.get(pk=admin_user.pk).has_perm("audit.unmask_pii")
