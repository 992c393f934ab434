"""Simulated labelers over the real HTTP API, or the whole recipe end to end with --full-loop.

    manage.py simulate --project SLUG --labelers 8 --noise 0.2 [--base-url http://127.0.0.1:8000] [--seed 0]
    manage.py simulate --full-loop [--labelers 8] [--noise 0.2] [--small] [--report-dir DIR]

Without --base-url the command starts its own web server (gunicorn on a free port) for the run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.errors import ServiceError
from annotation.models import Project
from training.simulation import labelers, processes
from training.simulation import services as sim_services


class Command(BaseCommand):
    help = "Label a project with simulated labelers over HTTP, or run the whole recipe with --full-loop."

    def add_arguments(self, parser):
        parser.add_argument("--project", help="Slug of the project to label.")
        parser.add_argument("--labelers", type=int, default=None, help="Simulated labelers (default 4; 8 in a loop).")
        parser.add_argument("--noise", type=float, default=0.0, help="Share of comparisons judged flipped (0..1).")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--kind", choices=["demonstration", "comparison"], default=None,
                            help="Only take tasks of this kind.")
        parser.add_argument("--base-url", default=None,
                            help="A running server, e.g. http://127.0.0.1:8000 (default: start one).")
        parser.add_argument("--full-loop", action="store_true", help="Run the whole recipe on the tiny base model.")
        parser.add_argument("--small", action="store_true", help="A tiny loop configuration (CI).")
        parser.add_argument("--report-dir", default=None, help="Where the loop writes its report "
                                                                 "(default var/reports/loop-<timestamp>/).")
        parser.add_argument("--worker", choices=["auto", "start", "none"], default="auto",
                            help="auto: start a Celery worker unless one answers a ping; start: always; "
                                 "none: use the running one.")
        parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                            help="Override a loop setting (see training/simulation/full_loop.py LoopConfig).")

    def handle(self, *args, **opts):
        if not 0.0 <= opts["noise"] <= 1.0:
            raise CommandError("--noise must be between 0 and 1.")
        if opts["full_loop"]:
            return self._full_loop(opts)
        if not opts["project"]:
            raise CommandError("Name a project with --project SLUG, or run --full-loop.")
        if opts["small"] or opts["report_dir"] or opts["set"]:
            raise CommandError("--small, --report-dir and --set go with --full-loop.")
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"No project with the slug {opts['project']!r}.")
        try:
            accounts = sim_services.sim_labelers_ensure(project=project, count=4 if opts["labelers"] is None else opts["labelers"])
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        server = None
        base_url = opts["base_url"]
        if base_url is None:
            server = processes.web_server_start(log_dir=Path(tempfile.mkdtemp(prefix="simulate-")))
            base_url = server.url
            self.stdout.write(f"Started a web server at {base_url}")
        try:
            result = labelers.label_project(
                base_url=base_url, project_id=project.pk, accounts=accounts, noise=opts["noise"],
                seed=opts["seed"], kind=opts["kind"],
            )
        except labelers.SimulationError as exc:
            raise CommandError(str(exc)) from None
        finally:
            if server is not None:
                server.stop()
        self.stdout.write(self.style.SUCCESS(
            f"{len(accounts)} simulated labelers on {project.slug} (noise {opts['noise']:.2f}): {result.summary()}"
        ))

    def _full_loop(self, opts):
        from training.simulation import full_loop

        try:
            config = full_loop.loop_config(small=opts["small"], overrides=opts["set"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if opts["labelers"] is not None:
            config.labelers = opts["labelers"]
        config.noise = opts["noise"]
        config.seed = opts["seed"]
        try:
            outcome = full_loop.loop_run(
                config=config, report_dir=opts["report_dir"], base_url=opts["base_url"], worker=opts["worker"],
                out=self.stdout,
            )
        except full_loop.LoopError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(outcome.table)
        self.stdout.write(self.style.SUCCESS(f"Report: {outcome.report_path}"))
