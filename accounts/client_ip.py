"""The client address that login lockout counts failures against (AXES_CLIENT_IP_CALLABLE).

Without a reverse proxy, REMOTE_ADDR is the client. Behind TRUSTED_PROXY_COUNT proxies, each one
appends the address it received the request from to X-Forwarded-For, so the Nth entry from the
right is the address the outermost trusted proxy saw. Entries further left were sent by the client
and can be anything: taking the leftmost (a common mistake) would let an attacker claim a fresh
address for every attempt. Taking REMOTE_ADDR behind a proxy would put every user at the proxy's
address, so a few failures would lock everyone out together. Both mistakes are why the count is a
setting the operator states, never guessed from the headers. It holds only when the app cannot be
reached except through those proxies.

IPv6 clients are counted per /64, the block a single subscriber is usually given, so walking
through addresses inside it does not escape the per-address limit.
"""

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip_address(request: HttpRequest) -> str | None:
    remote = _normalise(request.META.get("REMOTE_ADDR", ""))
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies < 1:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if not forwarded:
        return remote
    # Fewer entries than proxies: the request came through a shorter chain, and every entry was
    # still written by a trusted proxy, so the leftmost is the client.
    chosen = forwarded[-proxies] if len(forwarded) >= proxies else forwarded[0]
    return _normalise(chosen) or remote


def _normalise(value: str) -> str | None:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False).network_address)
    return str(address)
