"""Where links in emails point: this service's scheme://host, from one setting, never a request's Host header.

A forged Host header must not turn a password reset or staff invitation link
into a link to someone else's site, so every emailed link starts here. The
origin is the OAuth issuer URL's, which production already requires.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def public_origin() -> str:
    parts = urlsplit(settings.OAUTH2_PROVIDER.get("OIDC_ISS_ENDPOINT") or "")
    if not (parts.scheme and parts.netloc):
        raise ImproperlyConfigured("links in emails need the OAuth issuer URL (OAUTH_ISSUER_URL)")
    return f"{parts.scheme}://{parts.netloc}"
