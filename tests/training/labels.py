"""Real labels for the training tests, made through annotation.services as a labeler would."""

import json
import uuid
from pathlib import Path

from annotation import services as annotation_services
from annotation.models import Annotation, Membership, Task
from tests.factories import TaskFactory, comparison_task, member

DIALOGUES = Path(__file__).resolve().parents[2] / "training" / "pipelines" / "data" / "dialogues.jsonl"


def dialogues(n: int) -> list[list[dict]]:
    rows = [json.loads(line)["messages"] for line in DIALOGUES.read_text().splitlines() if line.strip()]
    return rows[:n]


def demonstrations_create(*, project, n: int = 8) -> list[Annotation]:
    """n demonstration tasks on prompts from the bundled dialogues, each answered by a labeler."""
    labeler = member(project, Membership.Role.LABELER)
    answers = {}
    for i, chat in enumerate(dialogues(n)):
        task = TaskFactory(project=project, kind=Task.Kind.DEMONSTRATION, prompt__messages=chat[:-1],
                           prompt__external_id=f"demo-{i}")
        answers[task.pk] = chat[-1]["content"]
    done = []
    for _ in answers:
        task = annotation_services.task_claim_next(project=project, labeler=labeler, kind=Task.Kind.DEMONSTRATION)
        annotation, _ = annotation_services.annotation_submit(
            task=task, labeler=labeler, client_id=uuid.uuid4(), data={"text": answers[task.pk]}
        )
        done.append(annotation)
    return done


def comparisons_create(*, project, n: int = 4) -> list[Annotation]:
    """n pairwise comparisons, the first response better than the second."""
    labeler = member(project, Membership.Role.LABELER)
    for i in range(n):
        comparison_task(project=project, texts=(f"A kind and warm answer {i}.", f"A cold answer {i}."))
    done = []
    for _ in range(n):
        task = annotation_services.task_claim_next(project=project, labeler=labeler, kind=Task.Kind.COMPARISON)
        shown = list(task.task_responses.order_by("position").values_list("response_id", flat=True))
        annotation, _ = annotation_services.annotation_submit(
            task=task, labeler=labeler, client_id=uuid.uuid4(),
            data={"ranking": [[shown[0]], [shown[1]]], "strength": "better"},
        )
        done.append(annotation)
    return done


def run_frozen(run):
    """What a worker does first with a new run: claim it and freeze its dataset snapshot. Returns it, refreshed."""
    from training import run_worker

    claimed = run_worker.run_claim(run_id=run.pk, worker="test:1")
    assert claimed is not None, "the run was not queued"
    run_worker.run_snapshot_freeze(run=claimed)
    run.refresh_from_db()
    return run
