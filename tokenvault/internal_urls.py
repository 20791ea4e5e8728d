"""The vault role's whole URL space (ROOT_URLCONF of `fintech.settings.vault`, ADR 0012).

Only the internal API and the probes: no /v1, OAuth, admin, metrics or static
files, so a mistake in a routing layer in front of the vault cannot expose any
of them. Every other path is a 404 problem document.
"""

from django.urls import path

from fintech import health
from fintech.problems import problem_response
from tokenvault import internal_apis

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("internal/v1/tokenize", internal_apis.TokenizeApi.as_view(), name="vault-tokenize"),
    path("internal/v1/detokenize", internal_apis.DetokenizeApi.as_view(), name="vault-detokenize"),
    path("internal/v1/shred", internal_apis.ShredApi.as_view(), name="vault-shred"),
    path("internal/v1/reap-candidates", internal_apis.ReapCandidatesApi.as_view(), name="vault-reap-candidates"),
    path("internal/v1/reap", internal_apis.ReapApi.as_view(), name="vault-reap"),
]


def not_found(request, exception=None):
    return problem_response(request, status=404, code="not_found", title="Not found")


def server_error(request):
    return problem_response(request, status=500, code="internal_error", title="Internal server error")


handler404 = not_found
handler500 = server_error
