"""Sample K responses per prompt from a model and make comparison tasks of them, from the terminal."""

import time

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError
from django.http import Http404

from annotation.errors import ServiceError
from annotation.models import Project
from loop import generation
from training.models import GenerationJob, ModelVersion

FINAL = {GenerationJob.Status.SUCCEEDED, GenerationJob.Status.FAILED, GenerationJob.Status.CANCELLED}
BAR_WIDTH = 30


def progress_line(job: GenerationJob) -> str:
    filled = int(BAR_WIDTH * job.progress)
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    return f"\r[{bar}] {job.step}/{job.total_steps or '?'} prompts  {job.status}   "


class Command(BaseCommand):
    help = "Queue a generation job: K responses per prompt from a model, made into comparison tasks."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--model", required=True, help="Model version name (base, sft or policy).")
        parser.add_argument("--k", type=int, default=4, help="Responses per prompt, 2 to 8.")
        parser.add_argument("--prompts", type=int, default=None, help="How many prompts (default: all).")
        parser.add_argument("--temperature", type=float, default=1.0)
        parser.add_argument("--top-p", type=float, default=0.95)
        parser.add_argument("--max-new-tokens", type=int, default=48)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--user", default=None,
            help="Act as this user: their role in the project must allow training (admin or engineer). "
                 "Without it the job is the operator's.",
        )
        parser.add_argument("--follow", action="store_true", help="Wait for the job and show its progress.")
        parser.add_argument("--poll", type=float, default=1.0, help="Seconds between progress reads with --follow.")

    def handle(self, *args, **opts):
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"No project with the slug {opts['project']!r}.")
        model = ModelVersion.objects.filter(name=opts["model"]).first()
        if model is None:
            raise CommandError(f"No model named {opts['model']!r}.")
        count = opts["prompts"] if opts["prompts"] is not None else project.prompts.count()
        user = None
        if opts["user"]:
            user = get_user_model().objects.filter(username=opts["user"]).first()
            if user is None:
                raise CommandError(f"No user {opts['user']!r}.")
        try:
            job = generation.generation_create(
                project=project, model_version=model, k=opts["k"], temperature=opts["temperature"],
                top_p=opts["top_p"], max_new_tokens=opts["max_new_tokens"], seed=opts["seed"],
                prompt_count=count, created_by=user,
            )
        except ServiceError as exc:
            where = f" ({exc.field})" if exc.field else ""
            raise CommandError(f"{exc.message}{where}") from None
        except (PermissionDenied, Http404) as exc:
            raise CommandError(f"{opts['user']}: {exc}") from None
        self.stdout.write(f"Generation job {job.pk}: k={job.k} on {len(job.prompt_ids)} prompts of {project.slug} "
                          f"from {model.name}")
        if opts["follow"]:
            self._follow(job, opts["poll"])

    def _follow(self, job: GenerationJob, poll: float) -> None:
        while True:
            job.refresh_from_db()
            self.stdout.write(progress_line(job), ending="")
            self.stdout.flush()
            if job.status in FINAL:
                break
            time.sleep(poll)
        self.stdout.write("")
        if job.status == GenerationJob.Status.SUCCEEDED:
            self.stdout.write(self.style.SUCCESS(
                f"Job {job.pk} succeeded: {job.tasks_created} comparison tasks, {job.prompts_skipped} prompts "
                f"skipped (fewer than 2 distinct responses)"
            ))
            return
        detail = job.error.strip().splitlines()[0] if job.error.strip() else ""
        raise CommandError(f"Job {job.pk} {job.status}. {detail}".strip())
