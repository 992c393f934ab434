"""Secrets and signatures, by the Standard Webhooks spec through its reference library."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def secret_new() -> str:
    """A fresh signing secret: "whsec_" and 32 random bytes in base64, as the spec writes them."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def body_encode(payload: dict) -> str:
    """The exact text sent and signed: compact JSON with keys in a fixed order."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def secrets_signing(*, secret: str, previous_secret: str = "", previous_until: datetime | None,
                    now: datetime) -> list[str]:
    """The secrets that sign now: the current one, and the one it replaced while its grace lasts."""
    if previous_secret and previous_until is not None and now < previous_until:
        return [secret, previous_secret]
    return [secret]


def headers_sign(*, secrets: list[str], event_id: str, timestamp: datetime, body: str) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt (the timestamp is the attempt's, in seconds).

    One signature per secret, space separated, as the spec allows: a receiver accepts the message when
    any of them is made with the secret it holds.
    """
    signatures = [Webhook(secret).sign(msg_id=event_id, timestamp=timestamp, data=body) for secret in secrets]
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
