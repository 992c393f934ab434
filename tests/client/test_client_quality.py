"""The Python client reads and sets dynamic overlap, and reads and queues the reward-model checks."""

import pytest
from django.utils import timezone
from feedbackloop_client import ApiError, Client

from annotation.models import Membership
from tests.factories import ProjectFactory, member, model_version
from training.models import RewardModelCheck

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_dynamic_overlap_and_reward_checks_through_the_client(live_server, monkeypatch):
    sent = []
    monkeypatch.setattr("training.tasks.reward_check_run.apply_async", lambda args=None, **kw: sent.append(tuple(args)))
    project = ProjectFactory(overlap=2)
    member(project, Membership.Role.ADMIN, username="client-admin")
    rm = model_version(name="client-rm", kind="reward", path="models/client-rm", project=project,
                       metrics={"eval_accuracy": 0.9})
    RewardModelCheck.objects.create(reward_model=rm, project=project, status="succeeded", agreement=0.7,
                                    labels=200, pairs=300, computed_at=timezone.now())
    fl = Client(live_server.url, username="client-admin", password="pass-1234")

    updated = fl.projects.update(project.pk, dynamic_overlap=True, max_overlap=4, agreement_threshold=0.75)
    assert (updated["dynamic_overlap"], updated["max_overlap"], updated["agreement_threshold"]) == (True, 4, 0.75)
    with pytest.raises(ApiError) as refused:
        fl.projects.update(project.pk, max_overlap=1)
    assert refused.value.status == 400 and refused.value.field == "max_overlap"

    [check] = fl.models.reward_checks(project.pk)
    assert (check["agreement"], check["stale"], check["verdict"]) == (0.7, True, "stale")  # 0.2 below its own 0.9
    [listed] = [m for m in fl.models.list() if m["name"] == "client-rm"]
    assert listed["reward_checks"][0]["agreement"] == 0.7
    [queued] = fl.models.check_reward_models(project.pk)
    assert queued["status"] == "queued" and len(sent) == 1
