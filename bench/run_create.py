"""How long `POST /api/training-runs/` takes as a project grows, now that the worker freezes the snapshot.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_run_create \\
    .venv/bin/python bench/run_create.py [--demos 100000] [--pairs 100000] [--repeat 5]

1. Migrates the database DATABASE_URL names and bulk-inserts a project of `demos` answered
   demonstration tasks and `pairs` judged two-response comparisons (plain INSERTs in batches, not
   through the labeling services, so that a large project takes seconds to make).
2. Times `repeat` POSTs of an sft and a reward run through the API (the view, the checks, one
   EXISTS, the INSERT; the Celery message is left out), and prints the median and the slowest.
3. For comparison, times what the request did before: freezing the sft and the preference
   snapshot (which the worker does now, before it trains).
Not a test: the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
STORAGE = Path(tempfile.mkdtemp(prefix="bench-run-create-"))
os.environ["FEEDBACKLOOP_STORAGE_ROOT"] = str(STORAGE)
os.environ["CELERY_BROKER_URL"] = "filesystem://"  # the runs' messages go to a folder that is thrown away
os.environ["CELERY_BROKER_FOLDER"] = str(STORAGE / "broker")

BATCH = 5000


def build(*, demos: int, pairs: int):
    from django.contrib.auth import get_user_model

    from annotation import services as annotation_services
    from annotation.models import Annotation, Membership, Prompt, Response, Task, TaskResponse

    User = get_user_model()
    tag = uuid.uuid4().hex[:8]
    admin = User.objects.create_superuser(f"bench-admin-{tag}", password="x")
    labeler = User.objects.create_user(f"bench-labeler-{tag}", password="x")
    project = annotation_services.project_create(name=f"Bench run create {tag}", created_by=admin)
    annotation_services.membership_set(project=project, user=labeler, role=Membership.Role.LABELER)
    chat = [{"role": "user", "content": "Say something kind about the weather."}]
    for kind, n in ((Task.Kind.DEMONSTRATION, demos), (Task.Kind.COMPARISON, pairs)):
        for start in range(0, n, BATCH):
            size = min(BATCH, n - start)
            prompts = Prompt.objects.bulk_create(
                [Prompt(project=project, messages=chat, external_id=f"{kind}-{start + i}") for i in range(size)]
            )
            tasks = Task.objects.bulk_create([
                Task(project=project, prompt=p, kind=kind, done=1, status=Task.Status.DONE) for p in prompts
            ])
            if kind == Task.Kind.DEMONSTRATION:
                Annotation.objects.bulk_create([
                    Annotation(task=t, project=project, labeler=labeler, kind=kind, text="It is a lovely day.")
                    for t in tasks
                ])
                continue
            responses = Response.objects.bulk_create([
                Response(prompt=p, text=text, source=Response.Source.MODEL)
                for p in prompts for text in ("A warm answer.", "A cold answer.")
            ])
            TaskResponse.objects.bulk_create([
                TaskResponse(task=t, response=responses[2 * i + j], position=j)
                for i, t in enumerate(tasks) for j in (0, 1)
            ])
            Annotation.objects.bulk_create([
                Annotation(task=t, project=project, labeler=labeler, kind=kind, strength="better",
                           ranking=[[responses[2 * i].pk], [responses[2 * i + 1].pk]])
                for i, t in enumerate(tasks)
            ])
    return project, admin


def base_model():
    from training.models import ModelVersion

    folder = STORAGE / "models" / "bench-base"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text("{}")
    model, _ = ModelVersion.objects.get_or_create(
        name="bench-base", defaults={"kind": "base", "path": "models/bench-base", "project": None}
    )
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demos", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from rest_framework.test import APIClient

    from annotation.export_filters import ExportFilters
    from training import snapshots

    started = time.perf_counter()
    project, admin = build(demos=args.demos, pairs=args.pairs)
    print(f"made {args.demos} demonstrations and {args.pairs} comparisons in {time.perf_counter() - started:.1f} s")
    base = base_model()
    client = APIClient()
    client.force_authenticate(admin)
    for kind in ("sft", "reward"):
        body = {"kind": kind, "project": project.pk, "base_model": base.pk, "config": {"max_steps": 200}}
        client.post("/api/training-runs/", body, format="json")  # warms the process's caches
        times = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            response = client.post("/api/training-runs/", body, format="json")
            times.append(1000 * (time.perf_counter() - began))
            assert response.status_code == 201, response.content
        print(f"POST /api/training-runs/ {kind}: median {statistics.median(times):.1f} ms, "
              f"slowest {max(times):.1f} ms over {args.repeat}")
    for fmt in ("sft", "preference"):
        began = time.perf_counter()
        snapshot = snapshots.snapshot_freeze(project=project, format=fmt, filters=ExportFilters())
        print(f"freezing the {fmt} snapshot ({snapshot.row_count} rows), which the request used to do: "
              f"{time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    try:
        main()
    finally:
        import shutil

        shutil.rmtree(STORAGE, ignore_errors=True)
