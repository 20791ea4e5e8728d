"""One JSON access-log line and the latency/status metrics for every request.

gunicorn's own access log is off: this line carries the request id, the route
pattern (never the query string, which may hold PII) and the client address as
resolved through trusted proxies.
"""

from __future__ import annotations

import logging
import time

from fintech.metrics import REQUEST_LATENCY, RESPONSES

access_log = logging.getLogger("fintech.access")


class RequestObservabilityMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        match = getattr(request, "resolver_match", None)
        route = match.route if match is not None and match.route else "unmatched"
        status = str(response.status_code)
        REQUEST_LATENCY.labels(request.method, route, status).observe(elapsed)
        RESPONSES.labels(status).inc()
        access_log.info(
            "%s %s %s",
            request.method,
            route,
            status,
            extra={
                "http_method": request.method,
                "route": route,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 2),
                "client_ip": getattr(request, "client_ip", None),
            },
        )
        return response
