"""Delivering one event to one endpoint: the fan-out, each attempt, and what an attempt's answer means.

The rules, each kept by a statement below:

- One delivery per (endpoint, event id), by a unique constraint: an event fanned out twice makes
  one delivery.
- An attempt starts with a conditional UPDATE (`_claim`) that only a pending delivery, not held by
  another worker and due now, passes. So a succeeded delivery is never sent again, even when its
  task message is delivered twice, and two copies of a message never send at the same time.
- 2xx is success. 408, 429, 5xx, timeouts and connection errors are tried again after
  BACKOFF * 2**(attempt-1) seconds, until the delivery has made its allowed attempts. Any other
  answer (a redirect, which is never followed, or a 4xx) fails the delivery at once, as does a URL
  the SSRF rules refuse now (webhooks/addresses.py) and an https certificate that does not verify
  for the URL's host (webhooks/tls.py).
- Every attempt is recorded (status code, response time, error, when), then the delivery's status.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from datetime import timedelta

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from annotation.errors import InvalidInput

from . import addresses, signing, tls
from .models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

RETRY_STATUS = frozenset({408, 429})
ERROR_LIMIT = 2000
USER_AGENT = "FeedbackLoop-Webhooks/1"


@dataclass(frozen=True)
class Result:
    """What an attempt did: `retry_in` seconds until the next one, or None when the delivery is settled."""

    status: str
    retry_in: float | None = None


SKIPPED = Result(status="skipped")


def payload_build(event: dict) -> dict:
    """The body: {"type", "timestamp", "data"}, as the Standard Webhooks spec shapes it."""
    return {"type": event["type"], "timestamp": event["timestamp"], "data": event["data"]}


def deliveries_create(*, event: dict) -> list[int]:
    """One pending delivery per active endpoint of the project subscribed to the event; the ids made now."""
    made = []
    endpoints = WebhookEndpoint.objects.filter(project_id=event["project_id"], active=True)
    for endpoint in endpoints:
        if event["type"] not in endpoint.events:
            continue
        try:
            with transaction.atomic():
                delivery = WebhookDelivery.objects.create(
                    endpoint=endpoint, project_id=endpoint.project_id, event_id=event["id"],
                    event_type=event["type"], payload=payload_build(event),
                    attempts_allowed=settings.WEBHOOKS_MAX_ATTEMPTS,
                )
        except IntegrityError:
            continue  # this event reached this endpoint already (a fan-out run twice)
        made.append(delivery.pk)
    return made


def backoff_seconds(attempt: int) -> float:
    return settings.WEBHOOKS_BACKOFF_SECONDS * 2 ** (attempt - 1)


def _claim(delivery_id: int) -> WebhookDelivery | None:
    """Take the delivery for one attempt: pending, held by no one, due. None: nothing to do now."""
    now = timezone.now()
    held_until = now + timedelta(seconds=settings.WEBHOOKS_TIMEOUT_SECONDS + 60)
    taken = (
        WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(locked_until=held_until, attempts=F("attempts") + 1, updated_at=now)
    )
    if not taken:
        return None
    return WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)


def _post(
    target: addresses.Target, *, body: str, headers: dict[str, str], verify: ssl.SSLContext | bool
) -> httpx.Response:
    """POST to the address the check accepted, asking for the URL's host there; no redirects, no proxies."""
    url = httpx.URL(target.url).copy_with(host=target.address, port=target.port)
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    # https: the TLS handshake names the URL's host (SNI), and the certificate is checked for that host,
    # never for the pinned address, against WEBHOOKS_CA_BUNDLE or else the system's trusted CAs.
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    with httpx.Client(timeout=settings.WEBHOOKS_TIMEOUT_SECONDS, follow_redirects=False, trust_env=False,
                      verify=verify) as client:
        return client.post(
            url, content=body.encode(), extensions=extensions,
            headers={**headers, "host": host_header, "content-type": "application/json", "user-agent": USER_AGENT},
        )


def _send(delivery: WebhookDelivery) -> tuple[int | None, int | None, str, bool]:
    """Make the request: (status code, response ms, error, whether trying again may help)."""
    endpoint = delivery.endpoint
    if not endpoint.active:
        return None, None, "The endpoint is disabled.", False
    try:
        target = addresses.url_resolve(endpoint.url)
    except InvalidInput as refused:
        return None, None, refused.message, False
    body = signing.body_encode(delivery.payload)
    now = timezone.now()
    secrets = signing.secrets_signing(secret=endpoint.secret, previous_secret=endpoint.previous_secret,
                                      previous_until=endpoint.previous_secret_until, now=now)
    headers = signing.headers_sign(secrets=secrets, event_id=delivery.event_id, timestamp=now, body=body)
    try:
        verify = tls.client_context(settings.WEBHOOKS_CA_BUNDLE) if target.scheme == "https" else True
    except tls.TrustStoreError as error:  # the platform's setting, not the receiver: a fix lets a retry pass
        return None, None, str(error)[:ERROR_LIMIT], True
    started = time.monotonic()
    try:
        response = _post(target, body=body, headers=headers, verify=verify)
    except httpx.TimeoutException:
        return None, _ms(started), f"Timed out after {settings.WEBHOOKS_TIMEOUT_SECONDS:g} s.", True
    except httpx.HTTPError as error:
        refused = tls.certificate_refusal(error, host=target.host)
        if refused:  # the receiver's certificate, not the network: trying again will not help
            return None, _ms(started), refused[:ERROR_LIMIT], False
        return None, _ms(started), f"{type(error).__name__}: {error}"[:ERROR_LIMIT], True
    code = response.status_code
    if 200 <= code < 300:
        return code, _ms(started), "", False
    if 300 <= code < 400:
        return code, _ms(started), "Redirects are not followed.", False
    return code, _ms(started), "", code in RETRY_STATUS or code >= 500


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def delivery_attempt(*, delivery_id: int) -> Result:
    """Make the delivery's next attempt if it is due and nobody else is making it; record it and settle."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return SKIPPED
    started_at = timezone.now()
    code, ms, error, retryable = _send(delivery)
    now = timezone.now()
    ok = code is not None and 200 <= code < 300
    again = retryable and delivery.attempts < delivery.attempts_allowed
    retry_in = backoff_seconds(delivery.attempts) if again else None
    if ok:
        status = WebhookDelivery.Status.SUCCEEDED
    elif again:
        status = WebhookDelivery.Status.PENDING
    else:
        status = WebhookDelivery.Status.FAILED
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery, attempt=delivery.attempts, status_code=code, response_ms=ms, error=error,
            started_at=started_at, finished_at=now,
        )
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=status, last_status_code=code, last_response_ms=ms, last_error=error, locked_until=None,
            next_attempt_at=now + timedelta(seconds=retry_in) if retry_in is not None else None,
            delivered_at=now if ok else None, updated_at=now,
        )
    return Result(status=status, retry_in=retry_in)


def deliveries_overdue(*, late_by: timedelta = timedelta(minutes=2)) -> list[int]:
    """Pending deliveries whose next attempt is well past due and held by no one: their message was lost."""
    now = timezone.now()
    return list(
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, created_at__lt=now - late_by)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lt=now - late_by))
        .values_list("pk", flat=True)[:1000]
    )
