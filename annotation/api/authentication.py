"""Token auth that answers repeat requests without a database query.

A token's user is kept for a few seconds in the process and for a few minutes in the shared
cache (Redis in production), so the hot labeler endpoints spend neither a query nor, mostly, a
network round trip on authentication. Deleting a token or deactivating a user takes effect
within LOCAL_SECONDS in every process once the shared entry is dropped (see token_forget).
"""

import time

from django.core.cache import cache
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

TOKEN_CACHE_SECONDS = 300
LOCAL_SECONDS = 5.0
_local: dict[str, tuple[float, object]] = {}


def token_cache_key(key: str) -> str:
    return f"auth-token:{key}"


def token_forget(key: str) -> None:
    cache.delete(token_cache_key(key))
    _local.pop(key, None)


class CachedTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key):
        now = time.monotonic()
        hit = _local.get(key)
        user = hit[1] if hit and hit[0] > now else None
        if user is None:
            user = cache.get(token_cache_key(key))
            if user is None:
                token = Token.objects.select_related("user").filter(key=key).first()
                if token is None:
                    raise exceptions.AuthenticationFailed("Invalid token.")
                user = token.user
                cache.set(token_cache_key(key), user, TOKEN_CACHE_SECONDS)
            if len(_local) > 10_000:
                _local.clear()
            _local[key] = (now + LOCAL_SECONDS, user)
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return (user, key)


def forget_deleted_token(sender, instance, **kwargs) -> None:
    token_forget(instance.key)


def forget_tokens_of_changed_user(sender, instance, **kwargs) -> None:
    """A password change or deactivation must not leave the cached user answering requests."""
    for key in Token.objects.filter(user_id=instance.pk).values_list("key", flat=True):
        token_forget(key)
