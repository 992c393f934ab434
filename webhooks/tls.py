"""https delivery: which CAs are trusted, and what a certificate that does not verify is told as.

Delivery connects to the address the SSRF check accepted (webhooks/addresses.py), so the URL's host
is not the one connected to. The handshake still names that host (SNI), and the certificate is
checked for it, never for the address: a receiver is trusted for the name the admin typed.

The trusted CAs are the file WEBHOOKS_CA_BUNDLE names (PEM; a private CA for internal receivers),
or else the system's store. A certificate that fails (another host's, expired, from a CA not
trusted, self-signed) fails the delivery at once with the reason: trying again would not help.
"""

from __future__ import annotations

import functools
import os
import ssl


class TrustStoreError(Exception):
    """WEBHOOKS_CA_BUNDLE names a file that cannot be read or holds no certificate."""


def client_context(ca_bundle: str) -> ssl.SSLContext:
    """A verifying client context: the bundle's CAs if one is set, else the system's; built once per file version."""
    if not ca_bundle:
        return _context("", 0)
    try:
        changed = os.stat(ca_bundle).st_mtime_ns
    except OSError as error:
        raise TrustStoreError(f"FEEDBACKLOOP_WEBHOOKS_CA_BUNDLE {ca_bundle} cannot be read: {error.strerror}.") from None
    try:
        return _context(ca_bundle, changed)
    except ssl.SSLError as error:
        raise TrustStoreError(f"FEEDBACKLOOP_WEBHOOKS_CA_BUNDLE {ca_bundle} holds no usable certificate: {error}.") \
            from None


@functools.lru_cache(maxsize=8)
def _context(ca_bundle: str, _changed: int) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_bundle or None)  # check_hostname and CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def certificate_refusal(error: BaseException, *, host: str) -> str | None:
    """The delivery log's line when `error` came from a certificate that did not verify; None otherwise."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ssl.SSLCertVerificationError):
            reason = error.verify_message or error.reason or str(error)
            return (f"The TLS certificate of {host} was refused: {reason}. The delivery is not tried again; "
                    "fix the receiver's certificate (or the trusted CAs) and redeliver.")
        error = error.__cause__ or error.__context__
    return None
