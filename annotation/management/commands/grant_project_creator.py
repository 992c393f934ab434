"""Give a user (or take away) the platform permission to create projects."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotation.services import project_creator_set


class Command(BaseCommand):
    help = "Let a user create projects (they become each new project's admin); --revoke takes the right away."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--revoke", action="store_true", help="Take the permission away instead.")

    def handle(self, *args, username, revoke, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        project_creator_set(user=user, allowed=not revoke)
        if revoke:
            note = " (still allowed: a superuser)" if user.is_superuser else ""
            self.stdout.write(f"{username} may no longer create projects{note}.")
        else:
            self.stdout.write(self.style.SUCCESS(f"{username} may now create projects."))
