"""The whole recipe, end to end, on the tiny base model: collect, train, generate, collect, evaluate.

    manage.py simulate --full-loop [--labelers 8] [--noise 0.2] [--small] [--report-dir DIR]

Everything goes through the platform as its users would: an admin's API token creates the project,
imports prompts, starts the runs and the generation jobs; simulated labelers (labelers.py) label
over HTTP; a Celery worker runs every pipeline as a subprocess. The stages, each timed:

  services        a Celery worker and a web server, started here unless given
  base model      the tiny model, built and registered if missing
  project         created over the API, with the simulated labelers as members
  import          synthetic prompts uploaded to the import API (one demonstration task each)
  demonstrations  written by the simulated labelers (the gold writer)
  sft             an SFT run from the base model
  generate sft    K responses per prompt from the SFT model: the comparison tasks
  comparisons     judged by the simulated labelers (gold preference, with noise)
  reward          a reward model from SFT on the preference snapshot
  rlhf            RLOO from SFT against the reward model (KL to SFT reported)
  dpo             DPO from SFT on the same preferences
  held-out import prompts for the evaluations, imported after every training snapshot was frozen
  generate rlhf   the next round's candidates, from the RLHF model, labeled like the first
  evaluations     A/B: RLHF vs SFT and DPO vs SFT on the held-out prompts, judged by the labelers
  gold scoring    a subprocess (torch, no Django): gold scores, gold win rates, reward accuracy
  lineage         every artefact linked: models, runs, snapshots, jobs, tasks, annotations

The report (report.py) goes to --report-dir: a table, report.json and report.html with charts.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from annotation.models import Annotation, Project, Prompt, Task
from training import runner
from training import services as training_services
from training.models import Evaluation, GenerationJob, ModelVersion, TrainingRun
from training.pipelines import synthetic
from training.registry import model_location

from . import labelers, processes, report
from .overrides import settings_with_overrides
from . import services as sim_services

FINAL = {"succeeded", "failed", "cancelled"}
POLL_SECONDS = 1.0


class LoopError(RuntimeError):
    """A stage of the loop failed; the message says which and why."""


@dataclass
class LoopConfig:
    """The loop's knobs. `manage.py simulate --full-loop --set name=value` overrides any of them."""

    labelers: int = 8
    noise: float = 0.0
    seed: int = 0
    demo_prompts: int = 480          # imported prompts, one demonstration each
    # Prompts the SFT model answers K times: the reward model's data. Beyond demo_prompts, fresh prompts
    # of the training split are imported after the SFT run (docs/full-loop.md, fifth round: at noise 0.2
    # the reward model's in-distribution gold accuracy went from 0.79 to 0.81-0.82 in the loop).
    comparison_prompts: int = 960
    k: int = 6                       # 6 responses give 15 pairs per prompt for the reward model
    gen_temperature: float = 1.0
    gen_top_p: float = 0.95
    max_new_tokens: int = 24
    round2_prompts: int = 48         # the RLHF model's round of comparisons
    eval_prompts: int = 64           # held-out prompts of each A/B evaluation
    eval_temperature: float = 0.7
    score_prompts: int = 128         # prompts of the gold scoring, in and out of distribution
    adversarial_prompts: int = 40    # held-out prompts, each with one best and five gamed answers
    kl_prompts: int = 64             # prompts sampled at every RLHF checkpoint for the gold-vs-proxy curve
    with_dpo: bool = True
    # Seconds a run or job may take before the loop gives up. Generous: on a shared machine the reward
    # run alone can pass 15 minutes, and a loop that stops there reports no quality figure at all
    # (its total time is still held against the 15-minute target).
    run_timeout: float = 3600.0
    sft: dict = field(default_factory=lambda: {
        "max_steps": 120, "batch_size": 16, "learning_rate": 1e-3, "warmup_steps": 10, "logging_steps": 5,
        "max_length": 64,
    })
    reward: dict = field(default_factory=lambda: {
        "max_steps": 400, "batch_size": 32, "learning_rate": 5e-4, "warmup_steps": 10, "logging_steps": 10,
        "max_length": 64, "eval_fraction": 0.1,
    })
    # The reward run's `data` (annotation/export_filters.py). Ties: the K answers of a prompt that gold
    # scores alike are tied by the labelers; as pairs both ways they teach the reward model to score
    # them alike, so RLOO is not pushed onto the one wording it happens to prefer (docs/full-loop.md).
    reward_data: dict = field(default_factory=lambda: {"ties": True})
    rlhf: dict = field(default_factory=lambda: {
        "max_steps": 60, "batch_size": 16, "num_generations": 4, "learning_rate": 3e-4, "beta": 1.5,
        "max_completion_length": 24, "logging_steps": 2, "max_length": 64,
        "save_steps": 10, "save_total_limit": None,  # every checkpoint kept: the gold-vs-proxy curve over KL
    })
    dpo: dict = field(default_factory=lambda: {
        "max_steps": 80, "batch_size": 16, "learning_rate": 2e-4, "beta": 0.1, "logging_steps": 5,
        "max_length": 64,
    })


SMALL = {
    "labelers": 3, "demo_prompts": 24, "comparison_prompts": 12, "k": 3, "round2_prompts": 4, "eval_prompts": 6,
    "score_prompts": 8, "max_new_tokens": 12, "adversarial_prompts": 2, "kl_prompts": 6,
    "sft": {"max_steps": 6, "batch_size": 8, "learning_rate": 1e-3, "logging_steps": 2, "max_length": 48},
    "reward": {"max_steps": 6, "batch_size": 8, "learning_rate": 5e-4, "logging_steps": 2, "max_length": 48,
               "eval_fraction": 0.25},
    "rlhf": {"max_steps": 3, "batch_size": 4, "num_generations": 2, "learning_rate": 1e-4, "beta": 0.05,
             "max_completion_length": 8, "logging_steps": 1, "max_length": 48, "save_steps": 1,
             "save_total_limit": None},
    "dpo": {"max_steps": 3, "batch_size": 4, "learning_rate": 5e-5, "beta": 0.1, "logging_steps": 1,
            "max_length": 48},
}


def loop_config(*, small: bool = False, overrides: list[str] | None = None) -> LoopConfig:
    """The full (or --small) configuration with `name=value` overrides; a dict field takes `rlhf.beta=0.1`."""
    return settings_with_overrides(LoopConfig(), small=SMALL if small else None, overrides=overrides, what="loop")


@dataclass
class Stage:
    name: str
    seconds: float = 0.0
    status: str = "running"
    detail: str = ""


@dataclass
class LoopOutcome:
    report_dir: Path
    report_path: Path
    table: str
    data: dict


class Loop:
    """One run of the recipe. Holds the admin's API client, the labelers and what each stage made."""

    def __init__(self, *, config: LoopConfig, report_dir: Path, base_url: str | None, worker: str, out=None):
        self.config = config
        self.report_dir = report_dir
        self.base_url = base_url
        self.worker_mode = worker
        self.out = out or sys.stdout
        self.stages: list[Stage] = []
        self.children: list[processes.Child] = []
        self.models: dict[str, ModelVersion] = {}
        self.runs: dict[str, dict] = {}
        self.jobs: dict[str, dict] = {}
        self.evaluations: dict[str, dict] = {}
        self.labeling: dict[str, dict] = {}
        self.scores: dict = {}
        self.lineage: list[dict] = []
        self.project: Project | None = None
        self.client: labelers.ApiClient | None = None
        self.accounts: list[labelers.Account] = []
        self.started_at = time.monotonic()

    # Plumbing ------------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    @contextmanager
    def stage(self, name: str):
        stage = Stage(name=name)
        self.stages.append(stage)
        self.say(f"[{self.elapsed():7.1f}s] {name} ...")
        started = time.monotonic()
        try:
            yield stage
        except BaseException as exc:
            stage.status, stage.seconds = "failed", time.monotonic() - started
            stage.detail = stage.detail or (str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__)
            self.say(f"[{self.elapsed():7.1f}s] {name} FAILED after {stage.seconds:.1f}s: {exc}")
            raise
        stage.status, stage.seconds = "succeeded", time.monotonic() - started
        self.say(f"[{self.elapsed():7.1f}s] {name}: {stage.seconds:.1f}s {stage.detail}")

    def elapsed(self) -> float:
        return time.monotonic() - self.started_at

    def api(self, method: str, path: str, body=None, ok=(200, 201, 202)):
        return self.client.expect(method, path, body, ok=ok)

    def wait(self, path: str, *, what: str, done) -> dict:
        """Poll GET path until done(body) says it finished; LoopError on failure or timeout."""
        deadline = time.monotonic() + self.config.run_timeout
        while True:
            body = self.api("GET", path)
            finished = done(body)
            if finished:
                return body
            if time.monotonic() > deadline:
                raise LoopError(f"{what} did not finish within {self.config.run_timeout:.0f}s (status {body.get('status')}).")
            time.sleep(POLL_SECONDS)

    # Stages --------------------------------------------------------------------------------------

    def start_services(self) -> None:
        log_dir = self.report_dir / "logs"
        with self.stage("services") as stage:
            notes = []
            if self.worker_mode == "start" or (self.worker_mode == "auto" and not processes.worker_running()):
                self.children.append(processes.worker_start(log_dir=log_dir))
                notes.append("started a Celery worker")
            else:
                notes.append("using the running Celery worker")
            if self.base_url is None:
                web = processes.web_server_start(log_dir=log_dir)
                self.children.append(web)
                self.base_url = web.url
                notes.append(f"started gunicorn at {web.url}")
            else:
                notes.append(f"using the server at {self.base_url}")
            stage.detail = "; ".join(notes)

    def bootstrap(self) -> None:
        with self.stage("base model") as stage:
            # Every pretraining step, however long it takes: a loaded machine's 100-second build stops
            # early, and the whole loop's figures would then depend on the load.
            self.models["base"] = training_services.base_model_bootstrap(full=True)
            built = self.models["base"].metrics or {}
            stage.detail = (f"{self.models['base'].name} at {self.models['base'].path}, "
                            f"{built.get('steps', '?')} pretraining steps, loss {built.get('loss', float('nan')):.2f}")
        admin = sim_services.sim_admin_ensure()
        self.client = labelers.ApiClient(self.base_url, admin.token, timeout=300)

    def create_project(self) -> None:
        with self.stage("project") as stage:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            slug = f"loop-{stamp}-{timezone.now().microsecond:06d}"
            body = self.api("POST", "/api/projects/", {
                "name": f"Full loop {stamp}", "slug": slug, "overlap": 1,
                "guidelines": "Write one **positive** sentence about the topic. Prefer kind, warm, "
                              "on-topic answers of a few words.",
            })
            self.project = Project.objects.get(pk=body["id"])
            self.accounts = sim_services.sim_labelers_ensure(project=self.project, count=self.config.labelers)
            stage.detail = f"{slug}, {len(self.accounts)} simulated labelers"

    def import_prompts(self, *, stage_name: str, prefix: str, n: int, seed: int, split: str = "train") -> list[int]:
        with self.stage(stage_name) as stage:
            lines = [
                json.dumps({"id": f"{prefix}-{i:05d}", "messages": messages, "metadata": {"synthetic": prefix}})
                for i, messages in enumerate(synthetic.make_prompts(n, seed=seed, split=split))
            ]
            result = self.client.upload(f"/api/projects/{self.project.pk}/import/", filename=f"{prefix}.jsonl",
                                        content=("\n".join(lines) + "\n").encode())
            stage.detail = f"{result['created_prompts']} prompts, {result['created_tasks']} tasks"
        return list(
            Prompt.objects.filter(project=self.project, external_id__startswith=f"{prefix}-")
            .order_by("id").values_list("pk", flat=True)
        )

    def label(self, *, stage_name: str, kind: str) -> None:
        with self.stage(stage_name) as stage:
            result = labelers.label_project(
                base_url=self.base_url, project_id=self.project.pk, accounts=self.accounts,
                noise=self.config.noise, seed=self.config.seed, kind=kind, in_turn=True,  # repeatable
            )
            self.labeling[stage_name] = result.as_dict()
            stage.detail = result.summary()
            if result.labels == 0:
                raise LoopError(f"{stage_name}: the labelers found nothing to label.")

    def train(
        self, *, name: str, kind: str, base: str, config: dict, reward: str | None = None, data: dict | None = None
    ) -> None:
        with self.stage(name) as stage:
            body = {"kind": kind, "project": self.project.pk, "base_model": self.models[base].pk, "config": config}
            if reward:
                body["reward_model"] = self.models[reward].pk
            if data:
                body["data"] = data
            run = self.api("POST", "/api/training-runs/", body)
            run = self.wait(f"/api/training-runs/{run['id']}/", what=f"The {kind} run {run['id']}",
                            done=lambda b: b["status"] in FINAL)
            self.runs[name] = run
            if run["status"] != "succeeded":
                raise LoopError(f"The {kind} run {run['id']} {run['status']}: {run.get('error', '')[:2000]}")
            self.models[name] = ModelVersion.objects.get(pk=run["output_model"])
            snapshot = run.get("snapshot") or {}
            chosen = "".join(f", {key}={json.dumps(value)}" for key, value in (data or {}).items())
            stage.detail = (f"run {run['id']}: {run['step']}/{run['total_steps']} steps on "
                            f"{snapshot.get('row_count', '?')} rows{chosen} -> model {self.models[name].name}")

    def generate(self, *, name: str, model: str, prompt_count: int) -> None:
        with self.stage(name) as stage:
            job = self.api("POST", f"/api/projects/{self.project.pk}/generate/", {
                "model_version": self.models[model].pk, "k": self.config.k, "prompt_count": prompt_count,
                "temperature": self.config.gen_temperature, "top_p": self.config.gen_top_p,
                "max_new_tokens": self.config.max_new_tokens, "seed": self.config.seed,
            })
            job = self.wait(f"/api/generation-jobs/{job['id']}/", what=f"Generation job {job['id']}",
                            done=lambda b: b["status"] in FINAL)
            self.jobs[name] = job
            if job["status"] != "succeeded":
                raise LoopError(f"Generation job {job['id']} {job['status']}: {job.get('error', '')[:2000]}")
            if not job.get("tasks_created"):
                raise LoopError(f"Generation job {job['id']} made no comparison task (all samples duplicates?).")
            stage.detail = (f"job {job['id']}: {job['tasks_created']} tasks, {job['responses_created']} responses, "
                            f"{job.get('duplicates_dropped', 0)} duplicates dropped")

    def evaluate(self, *, name: str, candidate: str, prompt_ids: list[int]) -> None:
        with self.stage(name) as stage:
            body = self.api("POST", "/api/evaluations/", {
                # The candidate is model A, so the evaluation's win rate is the candidate's over SFT.
                "project": self.project.pk, "model_a": self.models[candidate].pk, "model_b": self.models["sft"].pk,
                "prompt_ids": prompt_ids, "temperature": self.config.eval_temperature,
                "max_new_tokens": self.config.max_new_tokens, "seed": self.config.seed,
            })
            self.wait(f"/api/evaluations/{body['id']}/", what=f"Evaluation {body['id']}",
                      done=lambda b: b["status"] != Evaluation.Status.GENERATING)
            result = labelers.label_project(
                base_url=self.base_url, project_id=self.project.pk, accounts=self.accounts,
                noise=self.config.noise, seed=self.config.seed, kind="comparison", in_turn=True,
            )
            self.labeling[name] = result.as_dict()
            detail = self.api("GET", f"/api/evaluations/{body['id']}/")
            if detail["status"] in (Evaluation.Status.FAILED, Evaluation.Status.CANCELLED):
                raise LoopError(f"Evaluation {body['id']} {detail['status']}.")
            results = detail["results"]
            self.evaluations[name] = results
            stage.detail = (f"evaluation {body['id']}: {results.get('tasks_done')}/{results.get('tasks')} tasks; "
                            f"win rate of {candidate} over sft {_fmt(results.get('win_rate'))} "
                            f"[{_fmt(results.get('ci_low'))}, {_fmt(results.get('ci_high'))}]")

    def gold_scoring(self) -> None:
        with self.stage("gold scoring") as stage:
            policies = {name: model_location(self.models[name])
                        for name in ("base", "sft", "rlhf", "dpo") if name in self.models}
            config = {
                "policies": policies, "reward_model": model_location(self.models["reward"]), "baseline": "sft",
                "n_prompts": self.config.score_prompts, "seed": 10_000 + self.config.seed,
                "temperature": self.config.eval_temperature, "top_p": 0.95,
                "max_new_tokens": self.config.max_new_tokens, "rm_k": self.config.k,
                "adversarial_prompts": self.config.adversarial_prompts,
                "kl_curve": {"policy": "rlhf", "points": self.rlhf_checkpoints(), "n_prompts": self.config.kl_prompts},
                "output": str(self.report_dir / "scores.json"),
            }
            path = self.report_dir / "scoring.json"
            path.write_text(json.dumps(config, indent=2))
            done = subprocess.run(
                [sys.executable, "-m", "training.simulation.scoring", "--config", str(path)],
                cwd=settings.BASE_DIR, env=training_services.pipeline_env(), capture_output=True, text=True,
                timeout=self.config.run_timeout,
            )
            (self.report_dir / "logs").mkdir(parents=True, exist_ok=True)
            (self.report_dir / "logs" / "scoring.log").write_text(done.stdout + done.stderr)
            if done.returncode != 0:
                raise LoopError(f"Gold scoring failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
            self.scores = json.loads((self.report_dir / "scores.json").read_text())
            stage.detail = ", ".join(f"{k} {_fmt(v['gold_mean'])}" for k, v in self.scores["gold"].items())

    def rlhf_checkpoints(self) -> list[list]:
        """[[step, dir], ...] of the RLHF run's saved checkpoints, oldest first, then its final model."""
        if "rlhf" not in self.runs:
            return []
        run = TrainingRun.objects.get(pk=self.runs["rlhf"]["id"])
        points = []
        for path in runner.run_dir(run).glob("checkpoint-*"):
            step = path.name.rpartition("-")[2]
            if step.isdigit() and (path / "config.json").exists():
                points.append([int(step), str(path)])
        points.sort()
        final = [int(self.runs["rlhf"].get("step") or 0), model_location(self.models["rlhf"])]
        if not points or points[-1][0] < final[0]:
            points.append(final)
        return points

    def check_lineage(self) -> None:
        with self.stage("lineage") as stage:
            self.lineage = lineage_checks(project=self.project, models=self.models)
            bad = [c for c in self.lineage if not c["ok"]]
            stage.detail = f"{len(self.lineage) - len(bad)}/{len(self.lineage)} links hold"
            if bad:
                raise LoopError("Lineage broken: " + "; ".join(f"{c['check']} ({c['detail']})" for c in bad))

    # The recipe ------------------------------------------------------------------------------------

    def run(self) -> None:
        cfg = self.config
        self.start_services()
        self.bootstrap()
        self.create_project()
        self.import_prompts(stage_name="import", prefix="train", n=cfg.demo_prompts, seed=1 + cfg.seed)
        self.label(stage_name="demonstrations", kind=Task.Kind.DEMONSTRATION)
        self.train(name="sft", kind="sft", base="base", config=cfg.sft)
        extra = cfg.comparison_prompts - cfg.demo_prompts
        if extra > 0:  # a new batch of prompts for the comparison round; its demonstration tasks stay open
            self.import_prompts(stage_name="comparison import", prefix="compare", n=extra, seed=3000 + cfg.seed)
        self.generate(name="generate sft", model="sft", prompt_count=cfg.comparison_prompts)
        self.label(stage_name="comparisons", kind=Task.Kind.COMPARISON)
        self.train(name="reward", kind="reward", base="sft", config=cfg.reward, data=cfg.reward_data)
        self.train(name="rlhf", kind="rlhf", base="sft", reward="reward", config=cfg.rlhf)
        if cfg.with_dpo:
            self.train(name="dpo", kind="dpo", base="sft", config=cfg.dpo)
        # Imported after every training snapshot is frozen: no run has seen these prompts.
        # Held-out templates and topics (synthetic.HELDOUT_*): out of distribution for every model.
        held_out = self.import_prompts(stage_name="held-out import", prefix="heldout", n=cfg.eval_prompts,
                                       seed=5000 + cfg.seed, split="heldout")
        self.generate(name="generate rlhf", model="rlhf", prompt_count=min(cfg.round2_prompts, cfg.demo_prompts))
        self.label(stage_name="comparisons rlhf", kind=Task.Kind.COMPARISON)
        self.evaluate(name="eval rlhf vs sft", candidate="rlhf", prompt_ids=held_out)
        if cfg.with_dpo:
            self.evaluate(name="eval dpo vs sft", candidate="dpo", prompt_ids=held_out)
        self.gold_scoring()
        self.check_lineage()

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        for child in reversed(self.children):
            child.stop()

    def data(self) -> dict:
        return {
            "config": dataclasses.asdict(self.config),
            "project": {"id": self.project.pk, "slug": self.project.slug} if self.project else None,
            "base_url": self.base_url,
            "stages": [dataclasses.asdict(s) for s in self.stages],
            "total_seconds": self.elapsed(),
            "models": {k: {"id": m.pk, "name": m.name, "kind": m.kind, "parent": m.parent_id,
                           "produced_by": m.produced_by_id, "metrics": m.metrics} for k, m in self.models.items()},
            "runs": {k: {key: r.get(key) for key in ("id", "kind", "status", "step", "total_steps", "metrics",
                                                     "started_at", "finished_at", "snapshot", "config")}
                     for k, r in self.runs.items()},
            "jobs": self.jobs,
            "evaluations": self.evaluations,
            "labeling": self.labeling,
            "scores": self.scores,
            "lineage": self.lineage,
        }


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def lineage_checks(*, project: Project, models: dict[str, ModelVersion]) -> list[dict]:
    """Every link of the loop's artefacts, checked in the database: [{check, ok, detail}]."""
    checks: list[dict] = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        checks.append({"check": name, "ok": bool(ok), "detail": detail})

    expected = {
        "sft": ("base", ModelVersion.Kind.SFT, TrainingRun.Kind.SFT, "sft"),
        "reward": ("sft", ModelVersion.Kind.REWARD, TrainingRun.Kind.REWARD, "preference"),
        "rlhf": ("sft", ModelVersion.Kind.POLICY, TrainingRun.Kind.RLHF, "prompts"),
        "dpo": ("sft", ModelVersion.Kind.POLICY, TrainingRun.Kind.DPO, "preference"),
    }
    base = models.get("base")
    check("base model is registered as kind base", base is not None and base.kind == ModelVersion.Kind.BASE)
    for name, (parent, kind, run_kind, fmt) in expected.items():
        if name not in models:
            continue
        model = ModelVersion.objects.select_related("produced_by__snapshot").get(pk=models[name].pk)
        run = model.produced_by
        check(f"{name}: parent is {parent}", model.parent_id == models[parent].pk, f"parent {model.parent_id}")
        check(f"{name}: kind {kind}", model.kind == kind, model.kind)
        check(f"{name}: produced by a succeeded {run_kind} run", run is not None and run.kind == run_kind
              and run.status == TrainingRun.Status.SUCCEEDED and run.base_model_id == models[parent].pk,
              f"run {run.pk if run else None}")
        snapshot = run.snapshot if run else None
        check(f"{name}: run trained on a {fmt} snapshot of the project", snapshot is not None
              and snapshot.format == fmt and snapshot.project_id == project.pk and snapshot.row_count > 0,
              f"snapshot {snapshot.pk if snapshot else None}, {snapshot.row_count if snapshot else 0} rows")
        if name == "rlhf":
            check("rlhf: scored by the loop's reward model", run is not None and run.reward_model_id == models["reward"].pk)
    demos = Annotation.objects.filter(project=project, kind=Annotation.Kind.DEMONSTRATION).count()
    sft_run = models["sft"].produced_by if "sft" in models else None
    if sft_run is not None:
        check("sft: snapshot rows = the demonstrations", sft_run.snapshot.row_count == demos,
              f"{sft_run.snapshot.row_count} rows, {demos} demonstrations")
    jobs = list(GenerationJob.objects.filter(project=project).order_by("id"))
    check("generation jobs exist", len(jobs) >= 2, f"{len(jobs)} jobs")
    for job in jobs:
        tasks = Task.objects.filter(project=project, metadata__generation_job=job.pk)
        label = f"job {job.pk} ({job.model_version.name}{' vs ' + job.model_version_b.name if job.model_version_b_id else ''})"
        check(f"{label}: succeeded and made the tasks it counts",
              job.status == GenerationJob.Status.SUCCEEDED and tasks.count() == job.tasks_created > 0,
              f"{tasks.count()} tasks, {job.tasks_created} counted")
        sources = set(
            Task.objects.filter(pk__in=tasks.values("pk")).values_list("task_responses__response__model_version_id",
                                                                        flat=True)
        )
        allowed = {job.model_version_id, job.model_version_b_id} - {None}
        check(f"{label}: every shown response was written by its model(s)", sources == allowed,
              f"{sorted(s for s in sources if s)} vs {sorted(allowed)}")
        annotated = Annotation.objects.filter(task__in=tasks, kind=Annotation.Kind.COMPARISON).count()
        check(f"{label}: every task was judged", annotated == tasks.count(), f"{annotated} annotations")
    for evaluation in Evaluation.objects.filter(project=project):
        check(f"evaluation {evaluation.pk}: the candidate (A) against sft (B)", evaluation.model_b_id == models["sft"].pk
              and evaluation.model_a_id in {models.get("rlhf") and models["rlhf"].pk, models.get("dpo") and models["dpo"].pk})
        check(f"evaluation {evaluation.pk}: has its generation job",
              GenerationJob.objects.filter(evaluation=evaluation, status=GenerationJob.Status.SUCCEEDED).exists())
    open_comparisons = Task.objects.filter(project=project, kind=Task.Kind.COMPARISON, status=Task.Status.OPEN).count()
    check("no comparison task is left open", open_comparisons == 0, f"{open_comparisons} open")
    return checks


def loop_run(*, config: LoopConfig, report_dir: str | Path | None = None, base_url: str | None = None,
             worker: str = "auto", out=None) -> LoopOutcome:
    """Run the recipe and write its report. Raises LoopError (after writing what it has) on failure."""
    if report_dir is None:
        report_dir = Path(settings.BASE_DIR) / "var" / "reports" / f"loop-{datetime.now():%Y%m%d-%H%M%S}"
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    loop = Loop(config=config, report_dir=report_dir, base_url=base_url, worker=worker, out=out)
    error = None
    try:
        loop.run()
    except LoopError as exc:
        error = exc
    except (labelers.SimulationError, RuntimeError, subprocess.TimeoutExpired) as exc:
        error = LoopError(str(exc))
    finally:
        loop.stop()
    data = loop.data()
    data["error"] = str(error) if error else None
    path, table = report.report_write(data=data, report_dir=report_dir)
    if error:
        (loop.out).write(table + "\n")
        raise LoopError(f"{error}\n(partial report: {path})")
    return LoopOutcome(report_dir=report_dir, report_path=path, table=table, data=data)
