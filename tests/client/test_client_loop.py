"""The Python client (client/) drives the whole loop against the live test server and a real worker.

An engineer creates a project, imports prompts, a labeler labels them through the client, the
engineer exports them (to a file and to a datasets.Dataset), starts an SFT run and follows it to
success, then generates a comparison round from the new model. Errors come back as ApiError.
"""

import io
import json

import pytest
from feedbackloop_client import ApiError, Client

from annotation.models import Membership
from tests.factories import UserFactory, project_creator

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PROMPTS = [{"id": f"p{i}", "prompt": f"Say something kind about the number {i}."} for i in range(8)]


def test_the_whole_loop_through_the_client(live_server, celery_worker_process, tiny_base_model, tmp_path, capsys):
    project_creator(UserFactory(username="eng", password="pass-1234"))
    UserFactory(username="lab", password="pass-1234")
    eng = Client(live_server.url, username="eng", password="pass-1234")

    project = eng.projects.create(name="Client loop", overlap=1)
    assert project["role"] == "admin"
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join(json.dumps(p) for p in PROMPTS) + "\n")
    counts = eng.projects.import_file(project["id"], prompts)
    assert counts["created_prompts"] == len(PROMPTS)
    assert eng.projects.add_member(project["id"], username="lab", role=Membership.Role.LABELER)["role"] == "labeler"

    lab = Client(live_server.url, username="lab", password="pass-1234")
    labeled = 0
    while (task := lab.labeling.next(project["id"], kind="demonstration")) is not None:
        lab.labeling.submit(task["id"], text=f"A kind thought about {task['messages'][-1]['content'][-3:]}")
        labeled += 1
    assert labeled == len(PROMPTS) and lab.labeling.next(project["id"]) is None
    with pytest.raises(ApiError) as refused:  # labelers see nothing of training
        list(lab.runs.list())
    assert refused.value.status == 403

    assert eng.exports.to_file(project["id"], "sft", tmp_path / "sft.jsonl") == len(PROMPTS)
    dataset = eng.exports.to_dataset(project["id"], "sft")
    assert len(dataset) == len(PROMPTS) and dataset[0]["messages"][-1]["role"] == "assistant"

    with pytest.raises(ApiError) as bad:
        eng.runs.start(kind="sft", project=project["id"], base_model=tiny_base_model.pk, config={"max_steps": 0})
    assert bad.value.status == 400 and bad.value.field == "config.max_steps"

    run = eng.runs.start(kind="sft", project=project["id"], base_model=tiny_base_model.pk,
                         config={"max_steps": 4, "batch_size": 2, "logging_steps": 1, "max_length": 64})
    progress = io.StringIO()
    done = eng.runs.follow(run["id"], poll=0.5, timeout=240, out=progress)
    assert done["status"] == "succeeded", done.get("error")
    assert "] 4/4" in progress.getvalue() and "succeeded" in progress.getvalue()
    model = next(m for m in eng.models.list() if m["id"] == done["output_model"])
    assert model["kind"] == "sft" and model["project"] == project["id"]

    job = eng.generation.start(project["id"], model_version=model["id"], k=2, prompt_count=2, max_new_tokens=8)
    job = eng.generation.follow(job["id"], poll=0.5, timeout=240)
    assert job["status"] == "succeeded", job.get("error")


def test_bad_credentials_and_tokens_raise_api_errors(live_server):
    with pytest.raises(ApiError) as wrong:
        Client(live_server.url, username="nobody", password="nope")
    assert wrong.value.status == 400
    with pytest.raises(ApiError) as anonymous:
        Client(live_server.url, token="not-a-token").projects.list()
    assert anonymous.value.status == 401
