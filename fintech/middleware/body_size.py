"""Refuses oversized bodies with 413 before anything reads them.

Django's DATA_UPLOAD_MAX_MEMORY_SIZE only trips when a view reads the body and
answers 400; a declared Content-Length over the limit is refused here first.
"""

from __future__ import annotations

from django.conf import settings

from fintech.problems import problem_response


class BodySizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        declared = request.META.get("CONTENT_LENGTH") or "0"
        limit = settings.REQUEST_BODY_MAX_BYTES
        try:
            length = int(declared)
        except ValueError:
            return problem_response(request, status=400, code="invalid_content_length", title="Invalid Content-Length")
        if length > limit:
            return problem_response(
                request,
                status=413,
                code="request_too_large",
                title="Request body too large",
                detail=f"The body may be at most {limit} bytes.",
            )
        return self.get_response(request)
