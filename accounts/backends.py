"""The password authentication backend: Django's, refusing a hash that fails its MAC (issue 12, ADR 0016).

Every password login goes through it (settings.AUTHENTICATION_BACKENDS): the
web login (and so OAuth's authorization step and the admin), and operator
commands (`accounts.operator_auth`). The MAC is checked before the password,
so a hash written with the database login alone is never compared, nor
upgraded by Django's hasher migration (which would give it a fresh MAC). A
refusal looks like a wrong password to the caller and is recorded as
`auth.password_mac_invalid` (`accounts.password_macs`).
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from accounts.password_macs import password_mac_verified

UserModel = get_user_model()


class PasswordMacBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(UserModel.USERNAME_FIELD)
        if username is None or password is None:
            return None
        try:
            user = UserModel._default_manager.get_by_natural_key(username)
        except UserModel.DoesNotExist:
            UserModel().set_password(password)  # the hasher's time, as for a known user (Django's #20760)
            return None
        if not password_mac_verified(user, lookup="login", request=request):
            UserModel().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None

    async def aauthenticate(self, request, username=None, password=None, **kwargs):
        return await sync_to_async(self.authenticate)(request, username=username, password=password, **kwargs)
