"""django-csp with one change: machine-readable responses get `default-src 'none'`.

Pages (admin, login, API docs) keep the page policy from settings; JSON, problem
details and CSV render nothing in a browser, so they allow nothing at all.
"""

from __future__ import annotations

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings

_MACHINE_READABLE = (
    "application/json",
    "application/problem+json",
    "text/csv",
    "text/plain",
    "application/vnd.oai.openapi",
)


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    def get_policy_parts(self, request, response, report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        content_type = response.get("Content-Type", "").split(";")[0].strip().lower()
        if not report_only and content_type.startswith(_MACHINE_READABLE):
            parts.config = settings.CONTENT_SECURITY_POLICY_API
            parts.update = None
            parts.replace = None
            parts.nonce = None
        return parts
