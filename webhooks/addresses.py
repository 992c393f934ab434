"""Where a webhook may be sent: the SSRF rules, applied when an endpoint is saved and before each attempt.

A webhook URL is typed by a project admin, and the platform's workers then make requests to it from
inside the platform's network. So, by default, a URL is refused when:

- its scheme is not http or https, or it has no host, or it carries a user name or password;
- its host is one of the platform's own names (ALLOWED_HOSTS);
- any address its host resolves to is loopback, private, link-local, multicast, reserved,
  unspecified or otherwise not globally reachable.

WEBHOOKS_ALLOW_PRIVATE_NETWORKS lifts the rule for loopback, private and shared (carrier-grade NAT)
addresses, and for the platform's own names when they resolve only to such addresses; link-local
(169.254.0.0/16, where cloud metadata services answer), multicast, reserved and unspecified
addresses stay refused.

DNS may change between the save and the attempt, so each attempt resolves the host again and
connects to an address this check accepted (`url_resolve`), never to a second lookup's answer.
Redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import validate_host

from annotation.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (`address`) and what to ask for there (host, port, scheme)."""

    url: str
    scheme: str
    host: str
    port: int
    address: str


def _refusal(url: str, why: str, field: str) -> InvalidInput:
    return InvalidInput(f"{url} is refused: {why}.", field=field)


def _always_refused(ip: IPAddress) -> str | None:
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_reserved:
        return "a reserved address"
    return None


def address_refusal(ip: IPAddress, *, allow_private: bool) -> str | None:
    """Why the address may not receive a webhook, or None when it may."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    reason = _always_refused(ip)
    if reason:
        return reason
    if ip.is_global:
        return None
    if allow_private and (ip.is_loopback or ip.is_private or ip in ipaddress.ip_network("100.64.0.0/10")):
        return None
    return "a loopback address" if ip.is_loopback else "a private or internal address"


def _own_host(host: str) -> bool:
    allowed = [name for name in settings.ALLOWED_HOSTS if name != "*"]
    return validate_host(host, allowed)


def _split(url, field: str):
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput("url is required: an http or https URL.", field=field)
    url = url.strip()
    if len(url) > 2000:
        raise InvalidInput("url is longer than 2000 characters.", field=field)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidInput(f"{url!r} is not a valid URL.", field=field) from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("url must start with http:// or https://.", field=field)
    if not parts.hostname or any(c.isspace() for c in url):
        raise InvalidInput(f"{url!r} is not a valid URL: it has no host.", field=field)
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("url may not carry a user name or password.", field=field)
    return url, parts, port or (443 if parts.scheme == "https" else 80)


def _resolve(host: str, port: int, url: str, field: str) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise _refusal(url, f"its host does not resolve ({error})", field) from None
    # A scope id (fe80::1%eth0) is cut off: the address is what is judged.
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def url_resolve(url, *, field: str = "url") -> Target:
    """Check the URL and resolve its host; every address must pass. InvalidInput names the reason."""
    allow_private = settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS
    url, parts, port = _split(url, field)
    host = parts.hostname
    addresses = _resolve(host, port, url, field)
    if not addresses:
        raise _refusal(url, "its host has no address", field)
    for ip in addresses:
        reason = address_refusal(ip, allow_private=allow_private)
        if reason:
            raise _refusal(url, f"{host} resolves to {ip}, {reason}", field)
    if _own_host(host) and not (allow_private and all(not ip.is_global for ip in addresses)):
        raise _refusal(url, f"{host} is this platform's own host", field)
    return Target(url=url, scheme=parts.scheme, host=host, port=port, address=str(addresses[0]))


def url_check(url, *, field: str = "url") -> str:
    """The URL, stripped, if a webhook may be sent to it now (the save-time check)."""
    return url_resolve(url, field=field).url
