"""OAuth endpoints under /o/, named as DOT expects (its metadata views reverse these names)."""

from django.urls import path, re_path
from oauth2_provider import views as dot_views

from accounts.oauth import views

app_name = "oauth2_provider"

urlpatterns = [
    path("authorize/", views.AuthorizationView.as_view(), name="authorize"),
    path("token/", views.TokenView.as_view(), name="token"),
    path("revoke_token/", dot_views.RevokeTokenView.as_view(), name="revoke-token"),
    path("introspect/", views.IntrospectView.as_view(), name="introspect"),
    re_path(
        r"^\.well-known/openid-configuration/?$",
        views.ConnectDiscoveryInfoView.as_view(),
        name="oidc-connect-discovery-info",
    ),
    path(".well-known/jwks.json", dot_views.JwksInfoView.as_view(), name="jwks-info"),
    path("userinfo/", dot_views.UserInfoView.as_view(), name="user-info"),
]

# RFC 8414 puts the metadata at the origin's /.well-known/, with the issuer path appended.
well_known_urlpatterns = [
    path(
        ".well-known/oauth-authorization-server",
        views.OAuthServerMetadataView.as_view(),
        name="oauth-server-metadata",
    ),
    path(
        ".well-known/oauth-authorization-server/<path:issuer_path>",
        views.OAuthServerMetadataView.as_view(),
        name="oauth-server-metadata-issuer",
    ),
    path(
        ".well-known/openid-configuration",
        views.ConnectDiscoveryInfoView.as_view(),
        name="oidc-connect-discovery-info-root",
    ),
]
