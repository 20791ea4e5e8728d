from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerOauthRedirectView, SpectacularSwaggerSplitView

from accounts.oauth.urls import well_known_urlpatterns
from fintech import health, metrics

api_v1 = [
    path("", include("accounts.urls")),
    path("", include("ledger.urls")),
    path("", include("tokenvault.urls")),
    path("", include("audit.urls")),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    # Where Swagger UI's "Authorize" popup lands (settings.DOCS_OAUTH_REDIRECT_PATH): Swagger UI's own page.
    path("docs/oauth2-redirect.html", SpectacularSwaggerOauthRedirectView.as_view(), name="docs-oauth2-redirect"),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("v1/", include(api_v1)),
    path("o/", include("accounts.oauth.urls")),
    path("", include((well_known_urlpatterns, "oauth2_provider_metadata"))),
    path("accounts/", include("accounts.web_urls")),
    path(settings.ADMIN_URL, admin.site.urls),
]

handler400 = "fintech.views.bad_request"
handler403 = "fintech.views.permission_denied"
handler404 = "fintech.views.page_not_found"
handler500 = "fintech.views.server_error"
