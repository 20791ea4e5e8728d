"""Staff access in the admin: nobody changes roles, flags or single permissions in the user form, not even a
superuser (issue 11). A role grant, `is_staff`/`is_active`/`is_superuser` or a permission such as
`tokenvault.detokenize_national_id` (ADR 0012) goes through a four-eyes approval request instead; here the
form is view-only and a forged POST is refused without changing anything."""

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
def test_nobody_grants_roles_superuser_or_a_detokenize_permission_in_the_user_form():
    admin_user = staff_create(
        email=f"sec.{uuid.uuid4().hex[:8]}@fintech.example", password=None, roles=["security_admin"]
    )
    colleague = staff_create(email=f"col.{uuid.uuid4().hex[:8]}@fintech.example", password=None, roles=[])
    detokenize = Permission.objects.get(content_type__app_label="tokenvault", codename="detokenize_national_id")
    operations = Group.objects.get(name="operations")
    client = Client()
    force_login_with_mfa(client, admin_user)

    superuser = User.objects.create_superuser(f"root.{uuid.uuid4().hex[:8]}@fintech.example", None)
    superuser_client = Client()
    force_login_with_mfa(superuser_client, superuser)

    own_role = Group.objects.get(name="security_admin")
    for who, target, role in (
        (client, colleague, operations),
        (client, admin_user, own_role),
        (superuser_client, colleague, operations),
    ):
        page = who.get(f"/admin/accounts/user/{target.pk}/change/")
        assert page.status_code == 200
        assert 'name="groups"' not in page.content.decode() and 'name="is_superuser"' not in page.content.decode()
        response = who.post(
            f"/admin/accounts/user/{target.pk}/change/",
            _change_form(target, is_superuser="on", user_permissions=[detokenize.pk], groups=[role.pk]),
        )
        assert response.status_code == 403, response.content.decode()[:3000]

    assert not colleague.groups.exists()
    assert list(admin_user.groups.values_list("name", flat=True)) == ["security_admin"]
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

    assert response.status_code == 403, response.content.decode()[:3000]
    assert list(admin_user.groups.values_list("name", flat=True)) == ["security_admin"]
    assert not User.objects.get(pk=admin_user.pk).has_perm("audit.unmask_pii")
