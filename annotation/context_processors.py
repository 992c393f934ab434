"""Template context for the navigation: which platform-wide links the user's roles open."""

from django.utils.functional import SimpleLazyObject

from .roles import Action, can_create_projects, may_anywhere


def access(request) -> dict:
    """`nav_can_train` and `nav_can_create`, computed only by a template that reads them (one query each)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_can_train": False, "nav_can_create": False}
    return {
        "nav_can_train": SimpleLazyObject(lambda: user.is_superuser or may_anywhere(user=user, action=Action.TRAIN)),
        "nav_can_create": SimpleLazyObject(lambda: can_create_projects(user)),
    }
