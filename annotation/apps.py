from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    name = "annotation"
    verbose_name = "Annotation"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save
        from rest_framework.authtoken.models import Token

        from .api.authentication import forget_deleted_token, forget_tokens_of_changed_user

        post_delete.connect(forget_deleted_token, sender=Token, dispatch_uid="forget-deleted-token")
        post_save.connect(forget_tokens_of_changed_user, sender=get_user_model(), dispatch_uid="forget-user-tokens")
