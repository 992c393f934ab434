"""Signal receivers (connected in apps.py). They only hand over to the cache and services."""

from rest_framework.authtoken.models import Token

from . import services
from .authentication import token_forget


def forget_deleted_token(sender, instance, **kwargs) -> None:
    """A deleted key is refused at once, even by a request that read it just before (see authentication)."""
    token_forget(instance.key, revoked=True)


def forget_tokens_of_changed_user(sender, instance, **kwargs) -> None:
    """A deactivation must not leave the cached user answering requests."""
    for key in Token.objects.filter(user_id=instance.pk).values_list("key", flat=True):
        token_forget(key)


def note_password_disabled(sender, instance, update_fields=None, **kwargs) -> None:
    """Django admin's password form can also disable password logins (set_unusable_password()),
    which leaves no mark on the user the way set_password() does. So when a user is saved with an
    unusable password, compare with the stored one; other saves cost nothing."""
    if instance.pk is None or instance.has_usable_password():
        return
    if update_fields is not None and "password" not in update_fields:
        return
    stored = type(instance)._default_manager.filter(pk=instance.pk).values_list("password", flat=True).first()
    instance._password_disabled = stored is not None and stored != instance.password


def rotate_token_on_password_change(sender, instance, created, update_fields=None, **kwargs) -> None:
    """Every way of setting a password ends in user.set_password() and user.save(): the password
    change and reset pages, Django admin's password form, `manage.py changepassword` and code.
    set_password() leaves the new raw password in `_password` until save() has stored it; that is
    the mark Django's own save() uses to tell validators that the password changed. A hash upgrade
    at login clears it first, so re-hashing the same password never rotates the token. Disabling
    password logins is caught by note_password_disabled."""
    disabled = getattr(instance, "_password_disabled", False)
    instance._password_disabled = False
    if created:
        return
    if getattr(instance, "_password", None) is None and not disabled:
        return
    if update_fields is not None and "password" not in update_fields:
        return
    services.token_rotate_after_password_change(user=instance)
    # Whoever set a new password controls the account (or its email): a lockout that someone
    # else caused by failing on purpose must not keep them out.
    services.login_failures_reset(username=instance.get_username())


def reset_failures_on_login(sender, request, user, **kwargs) -> None:
    services.login_failures_reset(username=user.get_username())
