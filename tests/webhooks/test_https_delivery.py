"""https delivery against a local TLS server, with the checked address pinned (webhooks/tls.py).

The receiver's name, hooks.example.test, resolves to 127.0.0.1 here (getaddrinfo is replaced, as in
the SSRF tests) and loopback is allowed for these tests. The certificates come from test authorities
made in tmp_path; the delivery trusts one of them through WEBHOOKS_CA_BUNDLE.
"""

import socket

import pytest

from tests.factories import ProjectFactory
from webhooks import delivery
from webhooks.models import WebhookDelivery, WebhookEndpoint

from .tls_receiver import HOST, Authority, TlsReceiver

pytestmark = pytest.mark.django_db

real_getaddrinfo = socket.getaddrinfo


@pytest.fixture(autouse=True)
def _hooks_example_test_is_local(settings, monkeypatch):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    settings.WEBHOOKS_MAX_ATTEMPTS = 3

    def resolve(host, port, *args, **kwargs):
        if host.endswith(".example.test"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


@pytest.fixture(scope="module")
def authority():
    return Authority.new("FeedbackLoop test CA")


@pytest.fixture
def trusted(authority, tmp_path, settings):
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(authority.pem)
    settings.WEBHOOKS_CA_BUNDLE = str(bundle)
    return authority


def serve(tmp_path, authority: Authority, host: str, **kwargs) -> TlsReceiver:
    cert, key = authority.server_files(tmp_path / "server", host, **kwargs)
    return TlsReceiver(cert, key)


def attempt_to(url: str) -> WebhookDelivery:
    endpoint = WebhookEndpoint.objects.create(project=ProjectFactory(), url=url, events=["run.failed"],
                                              secret="whsec_" + "D" * 43)
    pending = WebhookDelivery.objects.create(endpoint=endpoint, project=endpoint.project, event_id="msg_tls",
                                             event_type="run.failed", attempts_allowed=3,
                                             payload={"type": "run.failed", "timestamp": "t", "data": {"id": 7}})
    delivery.delivery_attempt(delivery_id=pending.pk)
    pending.refresh_from_db()
    return pending


def test_a_valid_certificate_for_the_urls_host_delivers_and_verifies(tmp_path, trusted):
    receiver = serve(tmp_path, trusted, HOST)
    try:
        sent = attempt_to(receiver.url)
        assert (sent.status, sent.last_status_code, sent.last_error) == ("succeeded", 200, "")
        assert receiver.verified("whsec_" + "D" * 43) == [{"type": "run.failed", "timestamp": "t", "data": {"id": 7}}]
        assert receiver.received[0].headers["host"] == f"{HOST}:{receiver.server.server_address[1]}"
    finally:
        receiver.close()


@pytest.mark.parametrize("case, reason", [
    ("another host", f"Hostname mismatch, certificate is not valid for '{HOST}'"),
    ("expired", "certificate has expired"),
    ("untrusted CA", "unable to get local issuer certificate"),
])
def test_a_certificate_that_does_not_verify_fails_at_once_with_the_reason(tmp_path, trusted, case, reason):
    if case == "another host":
        receiver = serve(tmp_path, trusted, "other.example.test")
    elif case == "expired":
        receiver = serve(tmp_path, trusted, HOST, expired=True)
    else:
        receiver = serve(tmp_path, Authority.new("Someone else's CA"), HOST)
    try:
        failed = attempt_to(receiver.url)
    finally:
        receiver.close()
    assert failed.status == "failed" and failed.attempts == 1 and failed.next_attempt_at is None
    assert failed.last_status_code is None and failed.delivered_at is None
    assert failed.last_error.startswith(f"The TLS certificate of {HOST} was refused: ")
    assert reason in failed.last_error and "redeliver" in failed.last_error
    assert failed.attempt_log.get().error == failed.last_error
    assert receiver.received == []  # nothing was sent to a server the delivery could not verify


def test_without_the_bundle_the_system_store_does_not_trust_a_private_ca(tmp_path, authority, settings):
    settings.WEBHOOKS_CA_BUNDLE = ""
    receiver = serve(tmp_path, authority, HOST)
    try:
        failed = attempt_to(receiver.url)
    finally:
        receiver.close()
    assert failed.status == "failed" and "unable to get local issuer certificate" in failed.last_error


def test_an_unreadable_bundle_is_named_and_tried_again(tmp_path, settings):
    settings.WEBHOOKS_CA_BUNDLE = str(tmp_path / "missing.pem")
    pending = attempt_to(f"https://{HOST}:9/hook")
    assert pending.status == "pending" and pending.attempts == 1
    assert pending.last_error.startswith(f"FEEDBACKLOOP_WEBHOOKS_CA_BUNDLE {tmp_path / 'missing.pem'} cannot be read")
