"""Gives every request an id, echoed as X-Request-ID and present in every log line.

An incoming X-Request-ID is kept only from a trusted proxy and only if it looks
like an id; otherwise a fresh one is generated, so a client cannot forge or
inject into log correlation.
"""

from __future__ import annotations

import re
import uuid

from fintech.client_address import client_ip, peer_is_trusted_proxy
from fintech.request_context import bind_request_id, reset_request_id

_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


class RequestContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        offered = request.META.get("HTTP_X_REQUEST_ID", "")
        if offered and peer_is_trusted_proxy(request) and _ACCEPTABLE_ID.match(offered):
            request_id = offered
        else:
            request_id = uuid.uuid4().hex
        request.request_id = request_id
        request.client_ip = client_ip(request)
        token = bind_request_id(request_id)
        try:
            response = self.get_response(request)
        finally:
            reset_request_id(token)
        response["X-Request-ID"] = request_id
        return response
