"""Platform overhead of training: the same SFT and reward jobs through the platform and directly.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_training \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/14 REDIS_URL=redis://127.0.0.1:6379/4 \\
    .venv/bin/python bench/training.py [--steps 20] [--repeat 3] [--demos 64] [--pairs 64]

1. Migrates the database DATABASE_URL names, builds the tiny base model into a fresh
   STORAGE_ROOT and makes a project of synthetic demonstrations and comparisons, labelled through
   annotation.services as labelers would.
2. Platform: starts a real Celery worker (-Q default,gpu), starts each run through the API and
   polls GET /api/training-runs/{id}/ until it succeeds. Wall time: from the POST to the run's
   finished_at, so it counts the snapshot, the queue, the pipeline's start and the progress
   streaming, but not the poll interval.
   The worker's warm launcher has imported torch, transformers and TRL before the first POST;
   FEEDBACKLOOP_WARM_START=0 measures the cold path instead (a fresh interpreter per job).
3. Direct: in this one process, imports torch/transformers/TRL (timed, printed, not counted) and
   calls each pipeline's run(cfg) on the same snapshot files and base model, next to the
   platform's run of the same job: after it in even repetitions, before it in odd ones.
Both ways first run one untimed 2-step job of each kind (see main). Prints each run (with the
seconds inside Trainer.train, so that a gap can be placed in or around the training loop), then
the median wall time of each job both ways and the overhead ratio. Not a test: figures depend on
the machine.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
STORAGE = Path(tempfile.mkdtemp(prefix="bench-training-"))
os.environ["FEEDBACKLOOP_STORAGE_ROOT"] = str(STORAGE)
os.environ["BASE_MODEL"] = "tiny"


def setup_django():
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def build_project(*, demos: int, pairs: int):
    """A fresh project: `demos` demonstrations and `pairs` comparisons, judged by the synthetic gold rule."""
    from annotation import services as annotation_services
    from annotation.models import Membership, Prompt, Response, Task, TaskResponse
    from django.contrib.auth import get_user_model
    from training.pipelines import synthetic

    User = get_user_model()
    tag = uuid.uuid4().hex[:8]
    admin = User.objects.create_superuser(f"bench-admin-{tag}", password="x")  # may create projects
    labeler = User.objects.create_user(f"bench-labeler-{tag}", password="x")
    project = annotation_services.project_create(name=f"Bench training {tag}", created_by=admin)
    annotation_services.membership_set(project=project, user=labeler, role=Membership.Role.LABELER)
    answers: dict[int, str] = {}
    for i, row in enumerate(synthetic.sft_rows(demos, seed=1)):
        prompt = Prompt.objects.create(project=project, messages=row["messages"][:-1], external_id=f"d{i}")
        task = Task.objects.create(project=project, prompt=prompt, kind=Task.Kind.DEMONSTRATION)
        answers[task.pk] = row["messages"][-1]["content"]
    rng = random.Random(2)
    for i, messages in enumerate(synthetic.make_prompts(pairs, seed=2)):
        prompt = Prompt.objects.create(project=project, messages=messages, external_id=f"c{i}")
        task = Task.objects.create(project=project, prompt=prompt, kind=Task.Kind.COMPARISON)
        topic = synthetic.topic_of(messages)
        texts = [synthetic.make_response(rng, topic, +1), synthetic.make_response(rng, topic, -1)]
        rng.shuffle(texts)
        for position, text in enumerate(texts):
            response = Response.objects.create(prompt=prompt, text=text, source=Response.Source.MODEL)
            TaskResponse.objects.create(task=task, response=response, position=position)
    while task := annotation_services.task_claim_next(project=project, labeler=labeler):
        if task.kind == Task.Kind.DEMONSTRATION:
            data = {"text": answers[task.pk]}
        else:
            shown = list(task.task_responses.select_related("response").order_by("position"))
            verdict = synthetic.gold_compare(task.prompt.messages, shown[0].response.text, shown[1].response.text)
            if verdict["winner"] is None:
                data = {"ranking": [[shown[0].response_id, shown[1].response_id]]}
            else:
                best, worst = (shown[0], shown[1]) if verdict["winner"] == "a" else (shown[1], shown[0])
                data = {"ranking": [[best.response_id], [worst.response_id]], "strength": verdict["strength"]}
        annotation_services.annotation_submit(task=task, labeler=labeler, client_id=uuid.uuid4(), data=data)
    return project, admin


def start_worker(log_path: Path) -> subprocess.Popen:
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default,gpu", "--concurrency", "1",
         "--pool", "prefork", "-n", f"bench-{os.getpid()}@%h", "--loglevel", "INFO", "--without-gossip",
         "--without-mingle"],
        cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.monotonic() + 90
    # Ready, and (unless FEEDBACKLOOP_WARM_START=0) its pipeline launcher has imported the ML stack:
    # the figures are for a worker that is up, not for its start.
    warm = os.environ.get("FEEDBACKLOOP_WARM_START", "1").lower() not in ("0", "false", "no")
    while "ready." not in log_path.read_text() or (warm and "serving on" not in log_path.read_text()):
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise SystemExit(f"The worker did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)
    return proc


def platform_run(client, *, kind: str, project, base, config: dict, poll: float) -> tuple[float, float, float, int]:
    """Seconds from the POST to the moment the worker recorded the run as succeeded (finished_at);
    of those, the seconds before the pipeline started (API, queue, claim, snapshot, fork) and the
    seconds inside Trainer.train (its train_runtime); and the run's id."""
    from training.models import TrainingRun

    started = time.time()
    response = client.post("/api/training-runs/", {"kind": kind, "project": project.pk, "base_model": base.pk,
                                                   "config": config}, format="json")
    if response.status_code != 201:
        raise SystemExit(f"Could not start the {kind} run: {response.content!r}")
    run_id = response.json()["id"]
    while True:
        body = client.get(f"/api/training-runs/{run_id}/").json()
        if body["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(poll)  # not counted (finished_at is); few requests competing with the run for CPU
    if body["status"] != "succeeded":
        raise SystemExit(f"The {kind} run {body['status']}: {body['error']}")
    # The finish as the worker stamped it: the poll interval above does not count.
    run = TrainingRun.objects.get(pk=run_id)
    train_runtime = run.output_model.metrics["train_runtime"]
    return run.finished_at.timestamp() - started, run.started_at.timestamp() - started, train_runtime, run_id


def direct_run(*, kind: str, config: dict) -> tuple[float, float]:
    """Seconds of the pipeline's run(cfg), and of those, inside Trainer.train (train_runtime)."""
    import importlib

    from training.pipelines import common
    from training.services import pipeline_config_class

    module = importlib.import_module(f"training.pipelines.{kind}")
    cfg = common.config_from_dict(pipeline_config_class(kind=kind), config)
    started = time.perf_counter()
    devnull = open(os.devnull, "w")
    stdout, sys.stdout = sys.stdout, devnull  # the progress lines; the platform parses them, we drop them
    try:
        metrics = module.run(cfg)
    finally:
        sys.stdout = stdout
        devnull.close()
    return time.perf_counter() - started, metrics["train_runtime"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="max_steps of each job")
    parser.add_argument("--demos", type=int, default=64)
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each job, each way (medians are printed)")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between the GETs that follow a platform run")
    parser.add_argument("--base-steps", type=int, default=100, help="pretraining steps of the tiny model")
    args = parser.parse_args()

    setup_django()
    from rest_framework.test import APIClient

    from training import services
    from training.models import TrainingRun
    from training.snapshots import storage_path

    print(f"storage root {STORAGE}")
    t = time.perf_counter()
    base = services.base_model_bootstrap(max_steps=args.base_steps)
    print(f"tiny base model built in {time.perf_counter() - t:.1f}s")
    project, admin = build_project(demos=args.demos, pairs=args.pairs)
    client = APIClient()
    client.force_authenticate(admin)
    common = {"max_steps": args.steps, "batch_size": 8, "logging_steps": 1, "save_steps": args.steps, "seed": 0}
    jobs = [("sft", dict(common)), ("reward", {**common, "eval_fraction": 0.1})]

    from training.pipelines import launcher

    imports = launcher.preload()  # the very imports the worker's launcher makes before its first job
    print(f"direct: importing torch, transformers and TRL took {imports:.2f}s (not counted: a warm worker's"
          " launcher paid the same imports once, at worker start)")

    def direct_config(kind: str, config: dict, run: TrainingRun, out: Path) -> dict:
        shutil.rmtree(out, ignore_errors=True)
        return {**config, "model_path": str(storage_path(base.path)), "output_dir": str(out),
                "train_file": str(storage_path(run.snapshot.path))}

    worker = start_worker(STORAGE / "worker.log")
    platform: dict[str, list[float]] = {kind: [] for kind, _ in jobs}
    direct: dict[str, list[float]] = {kind: [] for kind, _ in jobs}
    # Seconds outside Trainer.train (model and data loading, saving; for the platform also the API,
    # the queue, the fork, the streaming and the registration): same code inside the training loop
    # both ways, so the platform's own cost shows here without the loop's run-to-run noise.
    platform_outside: dict[str, list[float]] = {kind: [] for kind, _ in jobs}
    direct_outside: dict[str, list[float]] = {kind: [] for kind, _ in jobs}
    snapshot_of: dict[str, TrainingRun] = {}  # the direct job reads the snapshot the platform froze

    def one_platform(kind: str, config: dict) -> None:
        elapsed, before, train, run_id = platform_run(client, kind=kind, project=project, base=base,
                                                      config=config, poll=args.poll)
        snapshot_of[kind] = TrainingRun.objects.select_related("snapshot").get(pk=run_id)
        platform[kind].append(elapsed)
        platform_outside[kind].append(elapsed - train)
        print(f"{kind:6s} platform {elapsed:6.2f}s (pipeline started after {before:.2f}s, Trainer.train"
              f" {train:.2f}s; run {run_id}, {snapshot_of[kind].snapshot.row_count} rows)")

    def one_direct(kind: str, config: dict) -> None:
        elapsed, train = direct_run(kind=kind, config=direct_config(kind, config, snapshot_of[kind],
                                                                    STORAGE / "direct" / kind))
        direct[kind].append(elapsed)
        direct_outside[kind].append(elapsed - train)
        print(f"{kind:6s} direct   {elapsed:6.2f}s (Trainer.train {train:.2f}s)")

    try:
        # Untimed, both ways, one short job of each kind: the first publish of a web process opens
        # its broker connection, the first task of a pool process its database connection, the
        # first job of an interpreter fills caches. A platform that is up, like a script past its
        # first job, has done all that.
        for kind, config in jobs:
            warmup = {**config, "max_steps": 2, "save_steps": 2}
            platform_run(client, kind=kind, project=project, base=base, config=warmup, poll=args.poll)
            snapshot_of[kind] = TrainingRun.objects.select_related("snapshot").filter(kind=kind).latest("pk")
            direct_run(kind=kind, config=direct_config(kind, warmup, snapshot_of[kind], STORAGE / "direct" / "warmup"))
        # Interleaved, so that a noisy minute on a shared machine hits both ways alike, and in
        # alternating order: with one fixed order, whichever platform job came right after the
        # direct SFT job ran 15-25% slower (reward with platform first, sft with direct first),
        # an effect of the order, not of the platform.
        for rep in range(args.repeat):
            for kind, config in jobs:
                if rep % 2 == 0:
                    one_platform(kind, config)
                    one_direct(kind, config)
                else:
                    one_direct(kind, config)
                    one_platform(kind, config)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)

    print()
    print(f"median of {args.repeat}, {args.steps} steps per job")
    print(f"{'job':8s} {'platform':>10s} {'direct':>10s} {'overhead':>10s} {'ratio':>7s}"
          f"   {'outside Trainer.train: platform':>32s} {'direct':>8s}")
    total_p = total_d = 0.0
    for kind, _ in jobs:
        p, d = statistics.median(platform[kind]), statistics.median(direct[kind])
        po, do = statistics.median(platform_outside[kind]), statistics.median(direct_outside[kind])
        total_p, total_d = total_p + p, total_d + d
        print(f"{kind:8s} {p:9.2f}s {d:9.2f}s {p - d:9.2f}s {p / d:6.2f}x   {po:31.2f}s {do:7.2f}s")
    print(f"{'total':8s} {total_p:9.2f}s {total_d:9.2f}s {total_p - total_d:9.2f}s {total_p / total_d:6.2f}x")
    shutil.rmtree(STORAGE, ignore_errors=True)


if __name__ == "__main__":
    main()
