"""Pages of the customers' password reset: Django's views, with the decisions left to `accounts.password_reset`.

1. `/accounts/password/reset/` takes an email. Every accepted request ends on
   the same "check your email" page, whoever the email belongs to; a throttled
   one gets 429 with Retry-After, and Redis not answering gets 503.
2. The emailed link opens `/accounts/password/reset/<id>/<token>/`, which (as
   Django does) moves the token into the session and redirects to a URL
   without it, so it cannot leak through a Referer header.
3. The new password is set by `customer_password_reset_complete`, which checks
   the token again under a row lock and signs the customer out everywhere.
   Nobody is logged in afterwards: the customer signs in (with their second
   factor, if they have one).
"""

from __future__ import annotations

import math

from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse_lazy

from accounts.password_reset import (
    PasswordResetLinkInvalid,
    PasswordResetNotAllowed,
    PasswordResetThrottled,
    PasswordResetUnavailable,
    customer_password_reset_complete,
    password_reset_request,
    password_reset_user_find,
)

UNAVAILABLE_RETRY_AFTER_SECONDS = 30


def _unavailable(request) -> HttpResponse:
    response = render(
        request,
        "registration/password_reset_unavailable.html",
        {"retry_after_seconds": UNAVAILABLE_RETRY_AFTER_SECONDS},
        status=503,
    )
    response["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER_SECONDS)
    return response


class CustomerPasswordResetView(auth_views.PasswordResetView):
    """The request form. Django's form validates the email; its `save()` is never called (no email from here)."""

    form_class = PasswordResetForm
    template_name = "registration/password_reset_form.html"
    success_url = reverse_lazy("password-reset-sent")

    def form_valid(self, form) -> HttpResponse:
        try:
            password_reset_request(email=form.cleaned_data["email"], request=self.request)
        except PasswordResetUnavailable:
            return _unavailable(self.request)
        except PasswordResetThrottled as refused:
            minutes = max(1, math.ceil(refused.retry_after_seconds / 60))
            response = self.render_to_response(
                self.get_context_data(form=form, throttled=refused, throttled_minutes=minutes), status=429
            )
            response["Retry-After"] = str(refused.retry_after_seconds)
            return response
        return HttpResponseRedirect(self.get_success_url())


class CustomerPasswordResetSentView(auth_views.PasswordResetDoneView):
    template_name = "registration/password_reset_done.html"


class CustomerPasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's link check and password form; the link names a customer by public id, never staff."""

    template_name = "registration/password_reset_confirm.html"
    success_url = reverse_lazy("password-reset-complete")
    post_reset_login = False

    def get_user(self, uidb64):
        return password_reset_user_find(uidb64)

    def form_valid(self, form) -> HttpResponse:
        token = self.request.session.get(auth_views.INTERNAL_RESET_SESSION_TOKEN, "")
        try:
            customer_password_reset_complete(
                user=self.user, token=token, password=form.cleaned_data["new_password1"], request=self.request
            )
        except (PasswordResetLinkInvalid, PasswordResetNotAllowed):
            self.validlink = False  # a racing submit used the link first, or the account changed meanwhile
            return self.render_to_response(self.get_context_data())
        finally:
            self.request.session.pop(auth_views.INTERNAL_RESET_SESSION_TOKEN, None)
        return HttpResponseRedirect(self.get_success_url())


class CustomerPasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "registration/password_reset_complete.html"
