"""Token auth that answers repeat requests without a database query.

A token's user and creation time are kept for a few seconds in the process and for a few minutes
in the shared cache (Redis in production), so the hot labeler endpoints spend neither a query nor,
mostly, a network round trip on authentication. Expiry is checked on every request against the
cached creation time, so a cached token stops working the moment it expires.

Revoking a key (deleting the Token: revoke, rotate, password change, user deleted) replaces its
shared entry with a marker instead of deleting it. A request that read the token from the database
just before the delete fills the cache with `add`, which never overwrites, so it cannot put the
revoked key back for TOKEN_CACHE_SECONDS. A user change (deactivation) drops the entries. The
process that makes the change forgets its own copy at once; other processes keep theirs for at most
LOCAL_SECONDS, the price of answering without a round trip.
"""

import time

from django.core.cache import cache
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from .selectors import token_is_expired

TOKEN_CACHE_SECONDS = 300
LOCAL_SECONDS = 5.0
REVOKED = "revoked"
EXPIRED_MESSAGE = "Token has expired. Request a new one with POST /api/auth/token/."
_local: dict[str, tuple[float, tuple]] = {}


def token_cache_key(key: str) -> str:
    # v2: entries are (user, created); the version keeps entries of the old shape (a bare user)
    # left in Redis by an earlier release from being read as the new one.
    return f"auth-token:v2:{key}"


def token_forget(key: str, *, revoked: bool = False) -> None:
    if revoked:
        cache.set(token_cache_key(key), REVOKED, TOKEN_CACHE_SECONDS)
    else:
        cache.delete(token_cache_key(key))
    _local.pop(key, None)


class CachedTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key):
        now = time.monotonic()
        hit = _local.get(key)
        entry = hit[1] if hit and hit[0] > now else None
        if entry is None:
            entry = cache.get(token_cache_key(key))
            if entry is None:
                token = Token.objects.select_related("user").filter(key=key).first()
                if token is None:
                    raise exceptions.AuthenticationFailed("Invalid token.")
                entry = (token.user, token.created)
                cache.add(token_cache_key(key), entry, TOKEN_CACHE_SECONDS)
            if entry == REVOKED:
                raise exceptions.AuthenticationFailed("Invalid token.")
            if len(_local) > 10_000:
                _local.clear()
            _local[key] = (now + LOCAL_SECONDS, entry)
        user, created = entry
        if token_is_expired(created=created):
            raise exceptions.AuthenticationFailed(EXPIRED_MESSAGE, code="token_expired")
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return (user, key)
