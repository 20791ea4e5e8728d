"""Who is on the other end of the socket, believing proxies only when configured to.

A client can put anything in X-Forwarded-For or X-Request-ID. Those headers are
read only when the direct peer is one of `TRUSTED_PROXIES` (or the terminator's
Unix socket, where there is no peer address); the client address
is then the right-most hop that is not itself a trusted proxy.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest


@lru_cache(maxsize=8)
def _trusted_networks(proxies: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def is_trusted_proxy(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _trusted_networks(tuple(settings.TRUSTED_PROXIES)))


def arrived_through_terminator(request: HttpRequest) -> bool:
    """Over the Unix socket only the TLS terminator's nginx can open (ADR 0018): gunicorn reports no peer there."""
    return request.META.get("REMOTE_ADDR", None) == ""


def peer_is_trusted_proxy(request: HttpRequest) -> bool:
    """A listed proxy, or the terminator's socket, whose nginx replaces X-Forwarded-For with the address it saw."""
    return arrived_through_terminator(request) or is_trusted_proxy(request.META.get("REMOTE_ADDR") or "")


def client_ip(request: HttpRequest) -> str:
    peer = request.META.get("REMOTE_ADDR", "")
    if not peer_is_trusted_proxy(request):
        return peer
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a malformed chain is not evidence of anything
        if not is_trusted_proxy(hop):
            return hop
    return peer
