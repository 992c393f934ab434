"""Reads for accounts: a user's API token and when it expires, and the projects they belong to."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.utils import timezone
from rest_framework.authtoken.models import Token

from annotation.models import Membership


@dataclass(frozen=True)
class TokenInfo:
    key: str
    created: datetime
    expires_at: datetime | None
    expired: bool


def token_ttl() -> timedelta | None:
    """How long a token lives (TOKEN_TTL_DAYS); None when tokens never expire (0, the default)."""
    days = settings.TOKEN_TTL_DAYS
    return timedelta(days=days) if days > 0 else None


def token_expires_at(*, created: datetime) -> datetime | None:
    ttl = token_ttl()
    return created + ttl if ttl else None


def token_is_expired(*, created: datetime) -> bool:
    expires_at = token_expires_at(created=created)
    return expires_at is not None and expires_at <= timezone.now()


def token_get(*, user: AbstractBaseUser) -> TokenInfo | None:
    token = Token.objects.filter(user=user).first()
    if token is None:
        return None
    return TokenInfo(
        key=token.key,
        created=token.created,
        expires_at=token_expires_at(created=token.created),
        expired=token_is_expired(created=token.created),
    )


def membership_list_for_user(*, user: AbstractBaseUser) -> list[Membership]:
    return list(Membership.objects.filter(user=user).select_related("project").order_by("project__name", "project_id"))
