from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_in
        from django.db.models.signals import post_delete, post_save, pre_save
        from rest_framework.authtoken.models import Token

        from . import receivers

        user_model = get_user_model()
        post_delete.connect(receivers.forget_deleted_token, sender=Token, dispatch_uid="forget-deleted-token")
        post_save.connect(receivers.forget_tokens_of_changed_user, sender=user_model, dispatch_uid="forget-user-tokens")
        pre_save.connect(receivers.note_password_disabled, sender=user_model, dispatch_uid="note-password-disabled")
        post_save.connect(receivers.rotate_token_on_password_change, sender=user_model, dispatch_uid="rotate-token-on-password")
        user_logged_in.connect(receivers.reset_failures_on_login, dispatch_uid="reset-login-failures")
