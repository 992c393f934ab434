"""Give a user (or take away) the platform permission to create projects."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand, CommandError

from annotation.roles import CREATE_PROJECT_PERMISSION


class Command(BaseCommand):
    help = "Let a user create projects (they become each new project's admin); --revoke takes the right away."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--revoke", action="store_true", help="Take the permission away instead.")

    def handle(self, *args, username, revoke, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        app_label, codename = CREATE_PROJECT_PERMISSION.split(".")
        permission = Permission.objects.get(content_type__app_label=app_label, codename=codename)
        if revoke:
            user.user_permissions.remove(permission)
            note = " (still allowed: a superuser)" if user.is_superuser else ""
            self.stdout.write(f"{username} may no longer create projects{note}.")
        else:
            user.user_permissions.add(permission)
            self.stdout.write(self.style.SUCCESS(f"{username} may now create projects."))
