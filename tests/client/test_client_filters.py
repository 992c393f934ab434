"""The client passes the export's quality filters, asks for their counts and starts a run with a data section."""

import pytest
from feedbackloop_client import ApiError, Client

from annotation.models import Annotation, Membership
from tests.factories import ProjectFactory, gold_comparison_task, member, model_version
from tests.training.labels import comparisons_create, run_frozen
from training.models import TrainingRun

pytestmark = pytest.mark.django_db(transaction=True)


def test_filters_counts_and_run_data_through_the_client(live_server, monkeypatch):
    monkeypatch.setattr("training.tasks.run_execute.apply_async", lambda *a, **kw: None)
    project = ProjectFactory()
    member(project, Membership.Role.ENGINEER, username="eng", password="pass-1234")
    made = comparisons_create(project=project, n=3)
    gold = gold_comparison_task(project=project, texts=("Gold right.", "Gold wrong."))
    shown = list(gold.task_responses.order_by("position").values_list("response_id", flat=True))
    Annotation.objects.create(task=gold, project=project, labeler=made[0].labeler, kind="comparison",
                              ranking=[[shown[0]], [shown[1]]], strength="better")
    base = model_version(name="tiny", kind="base", path="models/tiny")
    eng = Client(live_server.url, username="eng", password="pass-1234")

    assert len(list(eng.exports.lines(project.pk, "preference"))) == 4
    rows = list(eng.exports.lines(project.pk, "preference", exclude_gold=True, consensus="weight"))
    assert len(rows) == 3 and all("weight" in row for row in rows)
    counts = eng.exports.counts(project.pk, "preference", exclude_gold=True)
    assert (counts["all"], counts["selected"], counts["each"]["exclude_gold"]) == (4, 3, 3)
    with pytest.raises(ApiError) as caught:
        eng.exports.counts(project.pk, "preference", min_competence=2)
    assert caught.value.status == 400 and caught.value.field == "min_competence"

    run = eng.runs.start(kind="reward", project=project.pk, base_model=base.pk, data={"exclude_gold": True})
    assert run["snapshot"] is None and run["data"] == {"exclude_gold": True}  # the worker freezes it
    snapshot = run_frozen(TrainingRun.objects.get()).snapshot
    assert snapshot.row_count == 3 and snapshot.filters == {"exclude_gold": True}
