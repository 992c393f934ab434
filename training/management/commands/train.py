"""Start a training run from the terminal and follow it with a progress bar."""

import json
import time

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError
from django.http import Http404

from annotation.errors import ServiceError
from annotation.models import Project
from training import selectors, services
from training.models import ModelVersion, TrainingRun

FINAL = {TrainingRun.Status.SUCCEEDED, TrainingRun.Status.FAILED, TrainingRun.Status.CANCELLED}
BAR_WIDTH = 30


def parse_setting(text: str, option: str = "--set") -> tuple[str, object]:
    """key=value; the value is read as JSON when it parses (8, 1e-4, true, null, [..]) and as a string otherwise."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise CommandError(f"{option} takes key=value, not {text!r}.")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def progress_line(run: TrainingRun, loss: float | None) -> str:
    if run.phase == "freezing":
        of = f" of {run.frozen_rows_expected}" if run.frozen_rows_expected is not None else ""
        return f"\rfreezing the dataset: {run.frozen_rows}{of} rows   "
    filled = int(BAR_WIDTH * run.progress)
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    loss_text = f"  loss {loss:.4f}" if loss is not None else ""
    return f"\r[{bar}] {run.step}/{run.total_steps or '?'}{loss_text}  {run.status}   "


class Command(BaseCommand):
    help = "Start a training run (sft, reward, dpo, rlhf) on a project's snapshot and follow its progress."

    def add_arguments(self, parser):
        parser.add_argument("--kind", choices=services.KINDS)
        parser.add_argument("--project", help="Project slug.")
        again = parser.add_mutually_exclusive_group()
        again.add_argument("--resume", type=int, metavar="RUN_ID",
                           help="Queue a failed or cancelled run again, from its last checkpoint, and follow it.")
        again.add_argument("--retry", type=int, metavar="RUN_ID",
                           help="Start a failed or cancelled run again from scratch (a new run) and follow it.")
        parser.add_argument("--base", default=None, help="Model name to start from (default: the base model).")
        parser.add_argument("--reward", default=None, help="Reward model name (rlhf).")
        parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="A config field.")
        parser.add_argument(
            "--data", action="append", default=[], metavar="KEY=VALUE",
            help="A quality filter of the run's snapshot: exclude_gold=true, reviewed_only=true, "
                 "exclude_flagged=true, min_competence=0.7, consensus=margin|weight (docs/training-config.md).",
        )
        parser.add_argument(
            "--user", default=None,
            help="Act as this user: their role in the project must allow training (admin or engineer). "
                 "Without it the run is the operator's.",
        )
        parser.add_argument("--no-follow", action="store_true", help="Start the run and return at once.")
        parser.add_argument("--poll", type=float, default=1.0, help=argparse_hidden())

    def handle(self, *args, **opts):
        user = self._user(opts["user"])
        if opts["resume"] or opts["retry"]:
            run = self._again(opts["resume"] or opts["retry"], resume=bool(opts["resume"]), user=user)
            if not opts["no_follow"]:
                self._follow(run, opts["poll"])
            return
        if not opts["kind"] or not opts["project"]:
            raise CommandError("Give --kind and --project to start a run, or --resume/--retry RUN_ID.")
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"No project with the slug {opts['project']!r}.")
        base = self._model(opts["base"]) if opts["base"] else self._default_base()
        reward = self._model(opts["reward"]) if opts["reward"] else None
        config = dict(parse_setting(item) for item in opts["set"])
        data = dict(parse_setting(item, "--data") for item in opts["data"]) or None
        try:
            run = services.run_create(
                kind=opts["kind"], project=project, base_model=base, reward_model=reward, config=config,
                created_by=user, data=data,
            )
        except ServiceError as exc:
            where = f" ({exc.field})" if exc.field else ""
            raise CommandError(f"{exc.message}{where}") from None
        except (PermissionDenied, Http404) as exc:
            raise CommandError(f"{opts['user']}: {exc}") from None
        filters = ", ".join(f"{key}={value}" for key, value in run.data_filters.items())
        self.stdout.write(f"Run {run.pk}: {run.kind} on {project.slug} from {base.name}; the worker freezes its "
                          "dataset snapshot first" + (f", filtered by {filters}" if filters else ""))
        if opts["no_follow"]:
            return
        self._follow(run, opts["poll"])

    def _user(self, username):
        if not username:
            return None
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        return user

    def _again(self, run_id: int, *, resume: bool, user) -> TrainingRun:
        run = TrainingRun.objects.select_related("project", "base_model", "reward_model").filter(pk=run_id).first()
        if run is None:
            raise CommandError(f"No run {run_id}.")
        try:
            if resume:
                run = services.run_resume(run=run, by=user)
                self.stdout.write(f"Run {run.pk} queued again; it resumes from its last checkpoint.")
            else:
                run = services.run_retry(run=run, created_by=user)
                self.stdout.write(f"Run {run.pk} retries run {run_id} from scratch on the same snapshot.")
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        except (PermissionDenied, Http404) as exc:
            raise CommandError(f"{user.get_username() if user else 'operator'}: {exc}") from None
        return run

    def _model(self, name: str) -> ModelVersion:
        model = ModelVersion.objects.filter(name=name).first()
        if model is None:
            raise CommandError(f"No model named {name!r}.")
        return model

    def _default_base(self) -> ModelVersion:
        from django.conf import settings

        model = ModelVersion.objects.filter(name=settings.BASE_MODEL).first()
        if model is None:
            raise CommandError(f"No model named {settings.BASE_MODEL!r}: run manage.py bootstrap_base_model first.")
        return model

    def _follow(self, run: TrainingRun, poll: float) -> None:
        while True:
            run.refresh_from_db()
            loss = selectors.run_latest_metrics(run=run).get("loss")
            self.stdout.write(progress_line(run, loss), ending="")
            self.stdout.flush()
            if run.status in FINAL:
                break
            time.sleep(poll)
        self.stdout.write("")
        if run.status == TrainingRun.Status.SUCCEEDED:
            model = ModelVersion.objects.filter(produced_by=run).first()
            self.stdout.write(self.style.SUCCESS(f"Run {run.pk} succeeded: model {model.name if model else '?'}"))
            return
        detail = run.error.strip().splitlines()[0] if run.error.strip() else ""
        raise CommandError(f"Run {run.pk} {run.status}. {detail}".strip())


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS
