"""The address lockout counts against: the connection's, or the one the outermost trusted proxy saw."""

import pytest
from django.test import RequestFactory

from accounts.client_ip import client_ip_address
from tests.factories import UserFactory


def address(settings, proxies, remote="192.0.2.10", forwarded=None):
    settings.TRUSTED_PROXY_COUNT = proxies
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_ip_address(RequestFactory().post("/login/", **extra))


def test_without_proxies_the_header_is_ignored(settings):
    assert address(settings, 0, forwarded="203.0.113.5") == "192.0.2.10"


def test_behind_proxies_the_entry_the_outermost_trusted_proxy_wrote_wins(settings):
    # One proxy: it appended the client's address; anything left of it came from the client.
    assert address(settings, 1, forwarded="6.6.6.6, 203.0.113.5") == "203.0.113.5"
    # Two proxies (a load balancer, then nginx): the second entry from the right.
    assert address(settings, 2, forwarded="6.6.6.6, 203.0.113.5, 10.0.0.2") == "203.0.113.5"
    # A shorter chain than configured: every entry came from a proxy, the leftmost is the client.
    assert address(settings, 2, forwarded="203.0.113.5") == "203.0.113.5"
    # No header, or garbage in it: the connection's address.
    assert address(settings, 1) == "192.0.2.10"
    assert address(settings, 1, forwarded="not-an-address") == "192.0.2.10"


def test_ipv6_counts_per_64_and_mapped_ipv4_as_ipv4(settings):
    assert address(settings, 0, remote="2001:db8:1:2:aaaa::1") == "2001:db8:1:2::"
    assert address(settings, 0, remote="2001:db8:1:2:bbbb::9") == "2001:db8:1:2::"
    assert address(settings, 0, remote="::ffff:192.0.2.1") == "192.0.2.1"


@pytest.mark.django_db
def test_forged_forwarded_entries_do_not_escape_the_address_limit(client, settings, limit):
    settings.TRUSTED_PROXY_COUNT = 1
    UserFactory(username="kim")
    proxy = "10.0.0.2"
    for n in range(limit - 1):
        response = client.post(
            "/login/", {"username": f"guess{n}", "password": "x"}, REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=f"1.1.1.{n}, 198.51.100.7"
        )
        assert response.status_code == 200
    locked = client.post("/login/", {"username": "guess", "password": "x"}, REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="9.9.9.9, 198.51.100.7")
    assert locked.status_code == 429
    # Another client behind the same proxy is not locked out with it.
    ok = client.post("/login/", {"username": "kim", "password": "pass-1234"}, REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="198.51.100.8")
    assert ok.status_code == 302
