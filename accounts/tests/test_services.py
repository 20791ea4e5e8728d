from __future__ import annotations

import threading

import pytest
from django.contrib.auth.models import Group
from django.db import connection

from accounts.exceptions import EmailAlreadyRegistered
from accounts.models import CustomerProfile, User
from accounts.roles import ROLE_PERMISSIONS
from accounts.services import customer_create, roles_sync, staff_create


@pytest.mark.django_db
def test_a_customer_gets_a_profile_in_the_same_transaction():
    user = customer_create(email="Alice@Example.COM", password="correct horse battery staple")

    assert user.email == "alice@example.com"
    assert user.check_password("correct horse battery staple")
    assert CustomerProfile.objects.get(user=user).tier == "standard"
    assert str(user) == f"user {user.public_id}"  # never the email in reprs


@pytest.mark.django_db
def test_a_failed_customer_create_writes_nothing():
    customer_create(email="taken@example.com", password=None)

    with pytest.raises(EmailAlreadyRegistered):
        customer_create(email="TAKEN@example.com", password=None)

    assert User.objects.count() == 1
    assert CustomerProfile.objects.count() == 1


@pytest.mark.django_db
def test_roles_exist_after_migrate_with_exactly_the_declared_permissions():
    for role, codes in ROLE_PERMISSIONS.items():
        group = Group.objects.get(name=role)
        held = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
        assert held == set(codes)


@pytest.mark.django_db
def test_roles_sync_takes_away_permissions_not_declared():
    group = Group.objects.get(name="operations")
    group.permissions.add(*Group.objects.get(name="security_admin").permissions.all())

    roles_sync()

    held = {p.codename for p in Group.objects.get(name="operations").permissions.all()}
    assert held == {code.split(".")[1] for code in ROLE_PERMISSIONS["operations"]}


@pytest.mark.django_db
def test_staff_get_the_roles_they_are_given():
    user = staff_create(email="officer@example.com", password=None, roles=["compliance_officer"])

    assert user.is_staff
    assert user.has_perm("accounts.view_customerprofile")
    assert not user.has_perm("accounts.change_customerprofile")


@pytest.mark.django_db
def test_unknown_roles_are_refused():
    with pytest.raises(ValueError, match="Unknown staff roles"):
        staff_create(email="x@example.com", password=None, roles=["god_mode"])
    assert not User.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_racing_signups_for_one_email_create_exactly_one_user():
    """Eight threads sign up the same address in different casings at the same instant."""
    casings = ["race@example.com", "RACE@example.com", "Race@Example.com", "race@EXAMPLE.com"] * 2
    barrier = threading.Barrier(len(casings))
    outcomes: list[str] = []
    lock = threading.Lock()

    def sign_up(email: str) -> None:
        try:
            barrier.wait()
            customer_create(email=email, password=None)
            result = "created"
        except EmailAlreadyRegistered:
            result = "refused"
        except Exception as exc:
            result = f"error: {exc!r}"
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=sign_up, args=(email,)) for email in casings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["created"] + ["refused"] * 7
    assert User.objects.filter(email="race@example.com").count() == 1
    assert CustomerProfile.objects.count() == 1
