"""Time the preference export with and without quality filters and consensus, on a synthetic project.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/exports.py --tasks 3000

It builds a project of pair comparisons in the database that DATABASE_URL names, each judged by
--per-task of --labelers simulated labelers (each right with their own probability), times
export_count and the full export for each setting, and deletes the project. Not a test: the
figures depend on the machine. The first consensus setting includes crowd-kit's first import.
"""

import argparse
import os
import random
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")


def build(*, tasks: int, labelers: int, per_task: int, seed: int):
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from annotation.models import Annotation, Project, Prompt, Response, Task, TaskResponse

    rng = random.Random(seed)
    with transaction.atomic():
        project = Project.objects.create(name="bench exports", slug=f"bench-exports-{uuid.uuid4().hex[:8]}",
                                         overlap=per_task)
        users = [get_user_model().objects.create(username=f"bench-{uuid.uuid4().hex[:10]}") for _ in range(labelers)]
        skill = {user.pk: rng.uniform(0.55, 0.95) for user in users}
        prompts = Prompt.objects.bulk_create(
            [Prompt(project=project, messages=[{"role": "user", "content": f"Question {i}?"}], external_id=f"q{i}")
             for i in range(tasks)])
        made = Task.objects.bulk_create(
            [Task(project=project, prompt=p, kind="comparison", required=per_task) for p in prompts])
        responses = Response.objects.bulk_create(
            [Response(prompt=p, text=f"Answer {k} to {p.pk}.", source="import") for p in prompts for k in range(2)])
        TaskResponse.objects.bulk_create(
            [TaskResponse(task=t, response=responses[2 * i + k], position=k) for i, t in enumerate(made) for k in (0, 1)])
        rows = []
        for i, task in enumerate(made):
            good, bad = responses[2 * i].pk, responses[2 * i + 1].pk
            for user in rng.sample(users, per_task):
                ranking = [[good], [bad]] if rng.random() < skill[user.pk] else [[bad], [good]]
                rows.append(Annotation(task=task, project=project, labeler=user, kind="comparison", ranking=ranking,
                                       strength="better", client_id=uuid.uuid4()))
        Annotation.objects.bulk_create(rows)
    return project, users, len(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--labelers", type=int, default=20)
    parser.add_argument("--per-task", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import django

    django.setup()
    from annotation import exporters
    from annotation.export_filters import ExportFilters

    project, users, judgments = build(tasks=args.tasks, labelers=args.labelers, per_task=args.per_task, seed=args.seed)
    print(f"{args.tasks} pair tasks, each judged by {args.per_task} of {args.labelers} labelers: {judgments} judgments")
    settings = [
        ("every labeler's pairs", ExportFilters()),
        ("exclude_gold + exclude_flagged", ExportFilters(exclude_gold=True, exclude_flagged=True)),
        ("consensus=weight (first)", ExportFilters(consensus="weight")),
        ("consensus=weight (again)", ExportFilters(consensus="weight")),
    ]
    try:
        for name, filters in settings:
            started = time.perf_counter()
            count = exporters.export_count(project=project, fmt="preference", filters=filters)
            counted = time.perf_counter() - started
            started = time.perf_counter()
            lines = sum(1 for _ in exporters.export_lines(project=project, fmt="preference", filters=filters))
            exported = time.perf_counter() - started
            print(f"{name:32} count {count:7d} in {counted:6.2f} s   export {lines:7d} lines in {exported:6.2f} s")
    finally:
        project.delete()
        for user in users:
            user.delete()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
