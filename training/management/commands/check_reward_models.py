"""Is each reward model of a project still right? Show its last check, or queue a new one, from the terminal."""

from django.core.management.base import BaseCommand, CommandError

from annotation.errors import ServiceError
from annotation.models import Project
from training import staleness


class Command(BaseCommand):
    help = ("Show each reward model's agreement with the newest labels on the current policy's samples; "
            "--now queues a check of each on a gpu worker.")

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--now", action="store_true", help="Queue a check of each reward model now.")

    def handle(self, *args, **opts):
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"No project with the slug {opts['project']!r}.")
        if opts["now"]:
            try:
                queued = staleness.reward_checks_schedule_project(project=project)
            except ServiceError as error:
                raise CommandError(error.message) from None
            self.stdout.write(f"Queued {len(queued)} check{'s' if len(queued) != 1 else ''} on the gpu queue.")
        rows = staleness.reward_checks_for_project(project=project)
        if not rows:
            self.stdout.write("The project has no reward model.")
        for row in rows:
            check = row["check"]
            if check is None or check["computed_at"] is None:
                state = f"not computed yet ({check['status']})" if check else "never checked"
                self.stdout.write(f"{row['model'].name}: {state}")
                continue
            self.stdout.write(
                f"{row['model'].name}: {check['agreement_percent'] if check['agreement'] is not None else '-'}% "
                f"on {check['labels']} labels ({check['pairs']} pairs) of {check['policy_name'] or '-'}, "
                f"{check['verdict']}, {check['status']}. {check['hint']}"
            )
