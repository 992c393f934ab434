"""Simulated labelers over the real HTTP API, or the whole recipe end to end with --full-loop.

    manage.py simulate --project SLUG --labelers 8 --noise 0.2 [--base-url http://127.0.0.1:8000] [--seed 0]
    manage.py simulate --full-loop [--labelers 8] [--noise 0.2] [--small] [--report-dir DIR]
    manage.py simulate --project SLUG --mix careful=0.7,spammer=0.15,position=0.15 [--flip 0.2]
    manage.py simulate --population [--mix ...] [--labelers 20] [--overlap 3] [--gold-rate 0.1]
                       [--qualification N:X] [--small] [--report-dir DIR] [--set name=value]

A mix names labeler kinds and their shares: careful, noisy (flips a judgement with probability
--flip, or noisy:0.3=share), spammer (random), position (always the first shown), adversarial
(inverted). --population runs the experiment of training/simulation/population.py.

Without --base-url the command starts its own web server (gunicorn on a free port) for the run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

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
        parser.add_argument("--seed", type=int, default=None,
                            help="The random seed (default 0); in a loop or a population, the same as --set seed=N.")
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
                            help="Override a loop setting (see training/simulation/full_loop.py LoopConfig), or "
                                 "with --population a PopulationConfig setting (training/simulation/population.py).")
        parser.add_argument("--mix", default=None, metavar="KIND=SHARE,...",
                            help="Labeler kinds and shares, e.g. careful=0.7,spammer=0.15,position=0.15; kinds: "
                                 + ", ".join(labelers.BEHAVIOURS) + " (noisy:0.3=0.1 gives a noisy kind its flip).")
        parser.add_argument("--flip", type=float, default=None,
                            help=f"Flip probability of noisy labelers in --mix (default {labelers.DEFAULT_FLIP}).")
        parser.add_argument("--population", action="store_true",
                            help="The population experiment: a mix labels a project; flags and reward models.")
        parser.add_argument("--overlap", type=int, default=None, help="--population: labels per task (default 3).")
        parser.add_argument("--gold-rate", type=float, default=None, help="--population: gold rate (default 0.1).")
        parser.add_argument("--qualification", default=None, metavar="N:X",
                            help="--population: N qualification answers, at least a share X right (e.g. 5:0.8).")
        parser.add_argument("--min-competence", type=float, default=None,
                            help="--population: Dawid-Skene competence below which a labeler counts as flagged "
                                 "and is filtered out (default 0.7).")

    def handle(self, *args, **opts):
        if not 0.0 <= opts["noise"] <= 1.0:
            raise CommandError("--noise must be between 0 and 1.")
        if opts["flip"] is not None and not 0.0 <= opts["flip"] <= 1.0:
            raise CommandError("--flip must be between 0 and 1.")
        if opts["flip"] is not None and not opts["mix"]:
            raise CommandError("--flip goes with a --mix that has noisy labelers.")
        population_only = [name for name in ("overlap", "gold_rate", "qualification", "min_competence")
                           if opts[name] is not None]
        if opts["population"] and (opts["full_loop"] or opts["project"]):
            raise CommandError("--population makes its own projects: leave out --full-loop and --project.")
        if population_only and not opts["population"]:
            raise CommandError(", ".join("--" + n.replace("_", "-") for n in population_only)
                               + " go with --population.")
        _require_migrated()
        if opts["population"]:
            return self._population(opts)
        if opts["full_loop"]:
            if opts["mix"]:
                raise CommandError("--mix goes with --project or --population, not --full-loop.")
            return self._full_loop(opts)
        if not opts["project"]:
            raise CommandError("Name a project with --project SLUG, or run --full-loop or --population.")
        if opts["small"] or opts["report_dir"] or opts["set"]:
            raise CommandError("--small, --report-dir and --set go with --full-loop or --population.")
        behaviours = None
        if opts["mix"]:
            if opts["noise"]:
                raise CommandError("--noise and --mix do not go together: give noisy:P=share in the mix.")
            try:
                mix = labelers.mix_parse(opts["mix"], flip=labelers.DEFAULT_FLIP if opts["flip"] is None
                                         else opts["flip"])
                behaviours = labelers.mix_assign(mix, 4 if opts["labelers"] is None else opts["labelers"],
                                                 seed=opts["seed"] or 0)
            except ValueError as exc:
                raise CommandError(f"--mix: {exc}.") from None
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
                seed=opts["seed"] or 0, kind=opts["kind"], behaviours=behaviours,
            )
        except labelers.SimulationError as exc:
            raise CommandError(str(exc)) from None
        finally:
            if server is not None:
                server.stop()
        who = f"mix {opts['mix']}" if opts["mix"] else f"noise {opts['noise']:.2f}"
        held = f"; stopped by qualification: {', '.join(sorted(result.stopped))}" if result.stopped else ""
        self.stdout.write(self.style.SUCCESS(
            f"{len(accounts)} simulated labelers on {project.slug} ({who}): {result.summary()}{held}"
        ))

    def _population(self, opts):
        from training.simulation import population

        try:
            config = population.population_config(small=opts["small"], overrides=opts["set"])
            if opts["mix"]:
                config.mix = opts["mix"]
            if opts["flip"] is not None:
                config.flip = opts["flip"]
            if opts["labelers"] is not None:
                config.labelers = opts["labelers"]
            if opts["overlap"] is not None:
                config.overlap = opts["overlap"]
            if opts["gold_rate"] is not None:
                config.gold_rate = opts["gold_rate"]
            if opts["min_competence"] is not None:
                config.min_competence = opts["min_competence"]
            if opts["qualification"] is not None:
                config.qualification_tasks, config.qualification_min_accuracy = population.qualification_parse(
                    opts["qualification"])
            if opts["noise"]:
                raise ValueError("--noise does not go with --population: give noisy:P=share in --mix")
            config.seed = _seed(opts, config.seed)
            population.config_check(config)
        except ValueError as exc:
            raise CommandError(str(exc).rstrip(".") + ".") from None
        try:
            outcome = population.population_run(config=config, report_dir=opts["report_dir"],
                                                base_url=opts["base_url"], out=self.stdout)
        except population.PopulationError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(outcome.table)
        self.stdout.write(self.style.SUCCESS(f"Report: {outcome.report_path}"))

    def _full_loop(self, opts):
        from training.simulation import full_loop

        try:
            config = full_loop.loop_config(small=opts["small"], overrides=opts["set"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if opts["labelers"] is not None:
            config.labelers = opts["labelers"]
        config.noise = opts["noise"]
        try:
            config.seed = _seed(opts, config.seed)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        try:
            outcome = full_loop.loop_run(
                config=config, report_dir=opts["report_dir"], base_url=opts["base_url"], worker=opts["worker"],
                out=self.stdout,
            )
        except full_loop.LoopError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(outcome.table)
        self.stdout.write(self.style.SUCCESS(f"Report: {outcome.report_path}"))


def _require_migrated() -> None:
    """Stop before the first stage, not minutes later in the middle of the loop, when tables are missing."""
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        raise CommandError(f"The database has {len(pending)} unapplied migration(s), the first "
                           f"{pending[0][0].app_label}.{pending[0][0].name}: run `manage.py migrate` first.")


def _seed(opts: dict, configured: int) -> int:
    """The run's seed: --seed, else the configuration's (--set seed=N, default 0); both must agree."""
    given = opts["seed"]
    if given is None:
        return configured
    if any(item.split("=", 1)[0].strip() == "seed" for item in opts["set"]) and given != configured:
        raise ValueError(f"--seed {given} and --set seed={configured} disagree: give the seed once")
    return given
