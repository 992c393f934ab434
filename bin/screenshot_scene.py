"""The scene the README's screenshots show, on the demo project (run with `manage.py shell`, from bin/screenshots).

Labels from three labelers with some disagreement, a finished reward run with its curves and its model:
enough that every page shot has something to show. Nothing here trains: the run's metrics are written
as a run's would be. Never run it on a real database.
"""

import math
import random
import uuid
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from annotation import services
from annotation.models import Annotation, Membership, Project, Task
from training.models import MetricPoint, ModelVersion, TrainingRun
from training.snapshots import snapshot_freeze

rng = random.Random(7)
project = Project.objects.get(slug="demo")
users = get_user_model()
labelers = [users.objects.get(username="demo-labeler")]
for name in ("ana", "ben"):
    user, _ = users.objects.get_or_create(username=name)
    user.set_password("screenshots")
    user.save()
    services.membership_set(project=project, user=user, role=Membership.Role.LABELER)
    labelers.append(user)
services.project_update(project=project, overlap=2)

for labeler in labelers[1:]:
    for kind in ["demonstration"] * 6 + ["comparison"] * 12:
        task = services.task_claim_next(project=project, labeler=labeler, kind=kind)
        if task is None:
            break
        if task.kind == Task.Kind.DEMONSTRATION:
            data = {"text": "A clear, friendly answer that gets to the point."}
        else:
            shown = list(task.task_responses.order_by("position").values_list("response_id", flat=True))
            rng.shuffle(shown)
            data = {"ranking": [[pk] for pk in shown], "strength": "better"} if len(shown) == 2 else \
                {"ranking": [[pk] for pk in shown]}
        services.annotation_submit(task=task, labeler=labeler, client_id=uuid.uuid4(), data=data,
                                   time_spent_ms=rng.randint(8000, 60000))
# Spread the work over the last few hours, as a morning of labeling would be.
start = timezone.now() - timedelta(hours=5)
for annotation in Annotation.objects.filter(project=project).order_by("id"):
    Annotation.objects.filter(pk=annotation.pk).update(created_at=start + timedelta(minutes=rng.randint(0, 290)))

base = ModelVersion.objects.filter(kind=ModelVersion.Kind.BASE).order_by("id").first()
admin = users.objects.get(username="demo-admin")
if base is not None and not TrainingRun.objects.filter(project=project).exists():
    now = timezone.now()
    snapshot = snapshot_freeze(project=project, format="preference", created_by=admin)  # the labels it trained on
    run = TrainingRun.objects.create(
        kind="reward", project=project, base_model=base, snapshot=snapshot, status="succeeded", step=200, total_steps=200,
        started_at=now - timedelta(minutes=7), finished_at=now - timedelta(minutes=1), created_by=admin,
        worker="gpu-worker-1", config={"learning_rate": 0.0005, "max_steps": 200, "batch_size": 32},
        log_tail="step 200/200 loss=0.412 accuracy=0.842\nSaved the model to runs/1/model",
    )
    points = []
    for step in range(10, 201, 10):
        loss = 0.69 * math.exp(-step / 90) + 0.38 + rng.uniform(-0.015, 0.015)
        accuracy = 0.5 + 0.35 * (1 - math.exp(-step / 70)) + rng.uniform(-0.01, 0.01)
        margin = 1.6 * (1 - math.exp(-step / 80)) + rng.uniform(-0.04, 0.04)
        points += [MetricPoint(run=run, step=step, name="loss", value=loss),
                   MetricPoint(run=run, step=step, name="accuracy", value=accuracy),
                   MetricPoint(run=run, step=step, name="margin", value=margin)]
    MetricPoint.objects.bulk_create(points)
    ModelVersion.objects.create(name="demo-reward-v1", kind="reward", path="runs/1/model", parent=base,
                                produced_by=run, project=project,
                                metrics={"eval_accuracy": 0.842, "loss": 0.412, "train_runtime": 361.0})
print("Scene ready:", Task.objects.filter(project=project).count(), "tasks")
