"""Writes for accounts: API tokens (issue, rotate, revoke) and an account's failed logins.

Every token write locks the user's row first, so two requests for the same user (two clients
fetching a token at once, a rotation racing a password change) take turns instead of both
deleting the old key and one of them failing on the one-token-per-user constraint. Deleting a
Token is what revokes its key everywhere, cache included (receivers.forget_deleted_token).
"""

import axes.utils
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from rest_framework.authtoken.models import Token

from .selectors import token_is_expired


def _user_lock(user: AbstractBaseUser) -> None:
    list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))


@transaction.atomic
def token_issue(*, user: AbstractBaseUser) -> Token:
    """The user's token, or a new one when they have none or theirs has expired.

    An expired key is deleted rather than kept beside the new one: a user has one key at a time.
    """
    _user_lock(user)
    token = Token.objects.filter(user=user).first()
    if token is not None and not token_is_expired(created=token.created):
        return token
    if token is not None:
        token.delete()
    return Token.objects.create(user=user)


@transaction.atomic
def token_rotate(*, user: AbstractBaseUser) -> Token:
    """Replace the user's key with a new one (or create one): the old key stops working at once."""
    _user_lock(user)
    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user)


@transaction.atomic
def token_revoke(*, user: AbstractBaseUser) -> bool:
    """Delete the user's key; False when they had none."""
    _user_lock(user)
    deleted, _ = Token.objects.filter(user=user).delete()
    return deleted > 0


@transaction.atomic
def token_rotate_after_password_change(*, user: AbstractBaseUser) -> Token | None:
    """A new password must shut out whoever knew the old one, and a token is as good as the
    password that fetched it, so an existing key is replaced. A user without a token gets none."""
    _user_lock(user)
    if not Token.objects.filter(user=user).exists():
        return None
    return token_rotate(user=user)


def login_failures_reset(*, username: str) -> int:
    """Forget the failed logins recorded against this account, after it logged in successfully.

    Only the account's: resetting the client address's failures too (what AXES_RESET_ON_SUCCESS
    does) would let someone who owns one account wipe the per-address count they had built up
    guessing other accounts' passwords, simply by logging into their own between guesses.
    """
    return axes.utils.reset(username=username)
