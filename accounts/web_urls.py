"""Server-rendered pages for people: login (password, second factor), MFA enrolment, logout, home."""

from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import password_reset_views, web_views
from accounts.invitations import views as invitation_views

urlpatterns = [
    path("login/", web_views.login_view, name="login"),
    path("login/mfa/", web_views.login_mfa_view, name="login-mfa"),
    path("mfa/setup/", web_views.mfa_setup_view, name="mfa-setup"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Customers reset their own password (accounts/password_reset.py); never staff.
    path("password/reset/", password_reset_views.CustomerPasswordResetView.as_view(), name="password-reset"),
    path(
        "password/reset/sent/",
        password_reset_views.CustomerPasswordResetSentView.as_view(),
        name="password-reset-sent",
    ),
    path(
        "password/reset/complete/",
        password_reset_views.CustomerPasswordResetCompleteView.as_view(),
        name="password-reset-complete",
    ),
    path(
        "password/reset/<str:uidb64>/<str:token>/",
        password_reset_views.CustomerPasswordResetConfirmView.as_view(),
        name="password-reset-confirm",
    ),
    # Staff join (or re-enrol) only from a single-use invitation link (accounts/invitations/).
    path("staff-invitation/", invitation_views.staff_invitation_view, name="staff-invitation"),
    path(
        "staff-invitation/<str:token>/",
        invitation_views.staff_invitation_open_view,
        name="staff-invitation-open",
    ),
    path("", web_views.home_view, name="home"),
]
