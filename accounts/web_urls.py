"""Server-rendered pages for people: login (password, second factor), MFA enrolment, logout, home."""

from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import web_views

urlpatterns = [
    path("login/", web_views.login_view, name="login"),
    path("login/mfa/", web_views.login_mfa_view, name="login-mfa"),
    path("mfa/setup/", web_views.mfa_setup_view, name="mfa-setup"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", web_views.home_view, name="home"),
]
