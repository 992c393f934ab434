"""Token auth that answers repeat requests from the cache instead of a query per request."""

from django.core.cache import cache
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

TOKEN_CACHE_SECONDS = 300


def token_cache_key(key: str) -> str:
    return f"auth-token:{key}"


class CachedTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key):
        cache_key = token_cache_key(key)
        user = cache.get(cache_key)
        if user is None:
            token = Token.objects.select_related("user").filter(key=key).first()
            if token is None:
                raise exceptions.AuthenticationFailed("Invalid token.")
            user = token.user
            cache.set(cache_key, user, TOKEN_CACHE_SECONDS)
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return (user, key)
