"""A/B evaluations and the leaderboard: the math on hand-made annotations, the API, and one run through the worker."""

import re
import time

import pytest

from annotation.models import Annotation, Membership, Response, Task, TaskResponse
from tests.factories import ProjectFactory, PromptFactory, ResponseFactory, TaskFactory, UserFactory, member, model_version
from loop import evaluation as evaluations
from loop import generation
from training.models import Evaluation, GenerationJob

FINAL = {"succeeded", "failed", "cancelled"}


@pytest.fixture
def project():
    return ProjectFactory(slug="ab")


@pytest.fixture
def admin(project):
    return member(project, Membership.Role.ADMIN, username="abby")


@pytest.fixture
def models(db):
    return (
        model_version(name="sft-1", kind="sft", path="models/a"),
        model_version(name="rlhf-1", kind="policy", path="models/b"),
    )


@pytest.fixture
def enqueued(monkeypatch):
    sent = []
    monkeypatch.setattr(
        "loop.tasks.generation_execute.apply_async", lambda args=None, **kw: sent.append(args)
    )
    return sent


def evaluation_with_tasks(*, project, admin, model_a, model_b, n: int) -> Evaluation:
    """An evaluation whose generation job 'ran': A answered 'a<i>', B answered 'b<i>' on each of n prompts."""
    for _ in range(n):
        PromptFactory(project=project)
    evaluation = evaluations.evaluation_create(
        project=project, model_a=model_a, model_b=model_b, prompt_count=n, created_by=admin
    )
    job = GenerationJob.objects.get(evaluation=evaluation)
    generation.generation_claim(job_id=job.pk, worker="here:1")
    outputs = [{pk: [f"{side}{i}"] for i, pk in enumerate(job.prompt_ids)} for side in "ab"]
    generation.generation_complete(job=job, outputs=outputs)
    evaluation.refresh_from_db()
    return evaluation


def judge(task: Task, labeler, outcome: str) -> Annotation:
    """A stored comparison on an A/B task: 'a' (A wins), 'b' (B wins) or 'tie'."""
    by_model = {tr.response.model_version.name: tr.response_id
                for tr in task.task_responses.select_related("response__model_version")}
    a, b = by_model["sft-1"], by_model["rlhf-1"]
    ranking = {"a": [[a], [b]], "b": [[b], [a]], "tie": [[a, b]]}[outcome]
    return Annotation.objects.create(task=task, labeler=labeler, kind="comparison", ranking=ranking,
                                     strength="tie" if outcome == "tie" else "better")


# Results -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_results_count_ties_as_half_with_a_wilson_interval(project, admin, models, enqueued):
    evaluation = evaluation_with_tasks(project=project, admin=admin, model_a=models[0], model_b=models[1], n=11)
    assert evaluation.status == "labeling"
    tasks = list(Task.objects.filter(metadata__evaluation=evaluation.pk).order_by("id"))
    assert len(tasks) == 11
    labeler = member(project, username="judge")
    empty = evaluations.evaluation_results(evaluation=evaluation)
    assert (empty["n"], empty["win_rate"], empty["tasks"], empty["tasks_done"]) == (0, None, 11, 0)
    for task, outcome in zip(tasks, ["a"] * 6 + ["b"] * 2 + ["tie"] * 2):
        judge(task, labeler, outcome)
    Annotation.objects.create(task=tasks[10], labeler=labeler, kind="skip", reason="unclear")  # counts for nothing
    results = evaluations.evaluation_results(evaluation=evaluation)
    assert (results["wins"], results["losses"], results["ties"], results["n"]) == (6, 2, 2, 10)
    assert results["win_rate"] == pytest.approx(0.7)
    # Wilson score interval for 7 successes of 10 at z = 1.96.
    assert results["ci_low"] == pytest.approx(0.39678, abs=1e-4)
    assert results["ci_high"] == pytest.approx(0.89221, abs=1e-4)
    assert results["model_a"] == {"id": models[0].pk, "name": "sft-1"}
    # Left and right were shuffled: A is not always shown first.
    firsts = {task.task_responses.order_by("position").first().response.model_version_id for task in tasks}
    assert firsts == {models[0].pk, models[1].pk}


@pytest.mark.django_db
def test_all_bad_counts_as_a_tie_and_other_projects_do_not_leak_in(project, admin, models, enqueued):
    evaluation = evaluation_with_tasks(project=project, admin=admin, model_a=models[0], model_b=models[1], n=2)
    first, second = Task.objects.filter(metadata__evaluation=evaluation.pk).order_by("id")
    labeler = member(project, username="judge")
    judge(first, labeler, "b")
    Annotation.objects.create(task=second, labeler=labeler, kind="comparison", ranking=[], all_bad=True)
    other = ProjectFactory()
    other_eval = evaluation_with_tasks(project=other, admin=member(other, Membership.Role.ADMIN), model_a=models[0],
                                       model_b=models[1], n=1)
    judge(Task.objects.get(metadata__evaluation=other_eval.pk), member(other), "a")
    results = evaluations.evaluation_results(evaluation=evaluation)
    assert (results["wins"], results["losses"], results["ties"]) == (0, 1, 1)
    assert results["win_rate"] == pytest.approx(0.25)


@pytest.mark.django_db
def test_identical_answers_make_no_task(project, admin, models, enqueued):
    for _ in range(2):
        PromptFactory(project=project)
    evaluation = evaluations.evaluation_create(project=project, model_a=models[0], model_b=models[1], prompt_count=2,
                                               created_by=admin)
    job = GenerationJob.objects.get(evaluation=evaluation)
    assert (job.k, job.model_version_b_id, job.total_steps) == (1, models[1].pk, 4)
    generation.generation_claim(job_id=job.pk, worker="here:1")
    first, second = job.prompt_ids
    outputs = [{first: ["same"], second: ["x"]}, {first: ["same"], second: []}]
    job = generation.generation_complete(job=job, outputs=outputs)
    assert (job.tasks_created, job.prompts_skipped, job.duplicates_dropped) == (0, 2, 1)


# Leaderboard -------------------------------------------------------------------------------------------


def ranked_task(project, labeler, responses, ranking):
    """A comparison task showing `responses`; the labeler ranks them as `ranking` (groups of indexes)."""
    task = TaskFactory(project=project, kind=Task.Kind.COMPARISON, prompt=responses[0].prompt)
    for position, response in enumerate(responses):
        TaskResponse.objects.create(task=task, response=response, position=position)
    ids = [[responses[i].pk for i in group] for group in ranking]
    return Annotation.objects.create(task=task, labeler=labeler, kind="comparison", ranking=ids)


@pytest.mark.django_db
def test_leaderboard_ranks_by_bradley_terry_over_all_comparisons(client_for, project, admin):
    strong, middle, weak, unrated = (
        model_version(name=name, kind="sft", path=name)
        for name in ("strong", "middle", "weak", "unrated")
    )
    labeler = member(project, username="ranker")
    prompt = PromptFactory(project=project)

    def said(model, text="x"):
        return ResponseFactory(prompt=prompt, text=text, source=Response.Source.MODEL, model_version=model)

    for i in range(4):  # strong beats middle 3 times of 4
        ranked_task(project, labeler, [said(strong), said(middle)], [[0], [1]] if i < 3 else [[1], [0]])
    for i in range(4):  # middle beats weak 3 times of 4
        ranked_task(project, labeler, [said(weak), said(middle)], [[1], [0]] if i < 3 else [[0], [1]])
    # A ranking of 3 gives its 3 pairs, a tie gives half: strong > (middle = weak).
    ranked_task(project, labeler, [said(weak), said(strong), said(middle)], [[1], [0, 2]])
    # Two samples of the same model, and a human response: neither is a comparison between models.
    ranked_task(project, labeler, [said(weak), said(weak)], [[0], [1]])
    human = ResponseFactory(prompt=prompt, source=Response.Source.HUMAN)
    ranked_task(project, labeler, [human, said(weak)], [[0], [1]])
    said(unrated)
    # Another project's comparisons do not count here.
    other = ProjectFactory()
    other_prompt = PromptFactory(project=other)
    ranked_task(other, member(other), [
        ResponseFactory(prompt=other_prompt, source="model", model_version=weak),
        ResponseFactory(prompt=other_prompt, source="model", model_version=strong),
    ], [[0], [1]])

    board = evaluations.leaderboard(project=project)
    assert [row["model"]["name"] for row in board] == ["strong", "middle", "weak", "unrated"]
    assert [row["rank"] for row in board] == [1, 2, 3, None]
    by_name = {row["model"]["name"]: row for row in board}
    assert (by_name["strong"]["wins"], by_name["strong"]["losses"], by_name["strong"]["ties"]) == (5, 1, 0)
    assert by_name["strong"]["comparisons"] == 6
    assert (by_name["middle"]["wins"], by_name["middle"]["losses"], by_name["middle"]["ties"]) == (4, 5, 1)
    assert (by_name["weak"]["wins"], by_name["weak"]["losses"], by_name["weak"]["ties"]) == (1, 4, 1)
    assert by_name["unrated"]["comparisons"] == 0 and by_name["unrated"]["score"] is None
    assert board[0]["score"] > board[1]["score"] > board[2]["score"]
    assert board[0]["rating"] > 1000 > board[2]["rating"]

    engineer = member(project, role=Membership.Role.ENGINEER, username="engineer")
    body = client_for(engineer).get(f"/api/projects/{project.pk}/leaderboard/").json()
    assert [row["model"]["name"] for row in body["models"]] == ["strong", "middle", "weak", "unrated"]


# API ------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"model_b": "same"}, "model_b"),
        ({"model_b": None}, "model_b"),
        ({"model_a": 424242}, "model_a"),
        ({"model_a": "reward"}, "model_a"),
        ({"prompt_count": 99}, "prompt_count"),
        ({"prompt_count": None}, "prompt_count"),
        ({"temperature": 0}, "temperature"),
        ({"project": "x"}, "project"),
    ],
)
def test_evaluation_bad_input_names_the_field(
    client_for, project, admin, models, enqueued, django_capture_on_commit_callbacks, change, field
):
    PromptFactory(project=project)
    reward = model_version(name="rm", kind="reward", path="rm")
    body = {"project": project.pk, "model_a": models[0].pk, "model_b": models[1].pk, "prompt_count": 1, **change}
    body = {k: {"same": models[0].pk, "reward": reward.pk}.get(v, v) for k, v in body.items() if v is not None}
    with django_capture_on_commit_callbacks(execute=True) as captured:
        response = client_for(admin).post("/api/evaluations/", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert Evaluation.objects.count() == 0 and GenerationJob.objects.count() == 0
    assert captured == [] and enqueued == []


@pytest.mark.django_db
def test_evaluation_api_access_and_results(client_for, project, admin, models, enqueued,
                                           django_capture_on_commit_callbacks):
    for _ in range(3):
        PromptFactory(project=project)
    used = PromptFactory(project=project)
    TaskFactory(project=project, prompt=used)  # a labeled prompt is not held out
    labeler = member(project, username="lab")
    stranger = UserFactory(username="stranger")
    body = {"project": project.pk, "model_a": models[0].pk, "model_b": models[1].pk, "prompt_count": 3}
    assert client_for(stranger).post("/api/evaluations/", body, format="json").status_code == 404
    assert client_for(labeler).post("/api/evaluations/", body, format="json").status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(admin).post("/api/evaluations/", body, format="json")
    assert response.status_code == 201, response.content
    evaluation = Evaluation.objects.get()
    job = GenerationJob.objects.get()
    assert enqueued == [[job.pk]]
    assert used.pk not in job.prompt_ids and len(job.prompt_ids) == 3
    assert set(evaluation.prompts.values_list("pk", flat=True)) == set(job.prompt_ids)
    assert response.json()["results"]["job_status"] == "queued"
    engineer = member(project, role=Membership.Role.ENGINEER, username="eng")
    detail = client_for(engineer).get(f"/api/evaluations/{evaluation.pk}/")
    assert detail.status_code == 200 and detail.json()["results"]["n"] == 0
    assert client_for(labeler).get(f"/api/evaluations/{evaluation.pk}/").status_code == 404
    assert client_for(stranger).get(f"/api/evaluations/{evaluation.pk}/").status_code == 404
    assert [e["id"] for e in client_for(engineer).get("/api/evaluations/").json()["results"]] == [evaluation.pk]
    assert client_for(labeler).get("/api/evaluations/").status_code == 403
    assert client_for(stranger).get("/api/evaluations/").status_code == 403


# Through a real Celery worker -------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_evaluation_through_the_worker_pairs_one_answer_of_each_model(celery_worker_process, tiny_base_model):
    project = ProjectFactory(slug=f"ab-e2e-{time.monotonic_ns()}")
    admin = member(project, Membership.Role.ADMIN, username="ab-admin")
    other = model_version(name="tiny-again", kind="sft", path=tiny_base_model.path,
                                        parent=tiny_base_model, project=project)
    for i, text in enumerate(["Say hello.", "Name a colour.", "What is rain?"]):
        PromptFactory(project=project, messages=[{"role": "user", "content": text}], external_id=f"ab-{i}")
    evaluation = evaluations.evaluation_create(project=project, model_a=tiny_base_model, model_b=other,
                                               prompt_count=3, created_by=admin, temperature=1.0, max_new_tokens=16)
    job = GenerationJob.objects.get(evaluation=evaluation)
    deadline = time.monotonic() + 180
    while (job := GenerationJob.objects.get(pk=job.pk)).status not in FINAL and time.monotonic() < deadline:
        time.sleep(0.25)
    assert job.status == "succeeded", f"{job.status}\n{job.error}\n{job.log_tail}"
    assert job.step == job.total_steps == 6
    evaluation.refresh_from_db()
    assert evaluation.status == "labeling"
    tasks = Task.objects.filter(metadata__evaluation=evaluation.pk)
    assert tasks.count() == job.tasks_created == 3 - job.prompts_skipped >= 2
    for task in tasks:
        shown = list(task.task_responses.order_by("position").select_related("response"))
        assert sorted(tr.response.model_version_id for tr in shown) == sorted([tiny_base_model.pk, other.pk])
        assert shown[0].response.text != shown[1].response.text
        assert {tr.response.source for tr in shown} == {"model"}
    results = evaluations.evaluation_results(evaluation=evaluation)
    assert results["tasks"] == job.tasks_created and results["n"] == 0


# Pages ------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_evaluation_pages(client, project, admin, models, enqueued):
    evaluation = evaluation_with_tasks(project=project, admin=admin, model_a=models[0], model_b=models[1], n=4)
    judge_user = member(project, username="pagejudge")
    for task, outcome in zip(Task.objects.filter(metadata__evaluation=evaluation.pk).order_by("id"), "aab"):
        judge(task, judge_user, outcome)
    client.force_login(admin)
    page = client.get(f"/training/evaluations/{evaluation.pk}/").content.decode()
    assert 'data-role="win-rate">33.3%' in page  # stated for B, the challenger: A won 2 of 3
    assert "95% CI" in page and 'data-role="ci-band"' in page and 'data-role="wins">2<' in page
    assert 'id="board-chart"' in page and "sft-1" in page and "rlhf-1" in page
    assert "vendor/chart.umd.min.js" in page and "cdn" not in page.lower()
    listing = client.get("/training/evaluations/").content.decode()
    assert f"#{evaluation.pk}" in listing and "33%" in listing  # B's win rate
    board = client.get(f"/training/projects/{project.pk}/leaderboard/").content.decode()
    assert board.index("sft-1") < board.index("rlhf-1")  # A won 2 of 3
    bad = client.post("/training/evaluations/new/", {"project": project.pk, "model_a": models[0].pk,
                                                     "model_b": models[0].pk, "prompt_count": 2,
                                                     "temperature": 0.7, "max_new_tokens": 16})
    assert bad.status_code == 400 and "model_b must differ" in bad.content.decode()
    assert Evaluation.objects.count() == 1
    stranger = UserFactory(username="evalstranger")
    client.force_login(stranger)
    assert client.get(f"/training/evaluations/{evaluation.pk}/").status_code == 404
    assert client.get(f"/training/projects/{project.pk}/leaderboard/").status_code == 404
    client.force_login(member(project, username="evallabeler"))
    assert client.get(f"/training/evaluations/{evaluation.pk}/").status_code == 404
    assert client.get(f"/training/evaluations/new/?project={project.pk}").status_code == 403


@pytest.mark.django_db
def test_the_challenger_is_stated_and_a_fully_judged_evaluation_is_complete(project, admin, models, enqueued):
    evaluation = evaluation_with_tasks(project=project, admin=admin, model_a=models[0], model_b=models[1], n=3)
    judge_user = member(project, username="finisher")
    tasks = list(Task.objects.filter(metadata__evaluation=evaluation.pk).order_by("id"))
    for task, outcome in zip(tasks[:2], "ab"):
        judge(task, judge_user, outcome)
    Task.objects.filter(pk__in=[t.pk for t in tasks[:2]]).update(done=1, status="done")
    results = evaluations.evaluation_results(evaluation=evaluation)
    assert results["status"] == "labeling"
    assert results["challenger_win_rate"] == pytest.approx(1 - results["win_rate"])
    assert results["challenger_ci_low"] == pytest.approx(1 - results["ci_high"])
    judge(tasks[2], judge_user, "b")
    Task.objects.filter(pk=tasks[2].pk).update(done=1, status="done")
    assert evaluations.evaluation_results(evaluation=evaluation)["status"] == "complete"


@pytest.mark.django_db
def test_leaderboard_ratings_carry_bootstrap_intervals(project, admin, models, enqueued):
    from training.pipelines import evaluate as stats

    evaluation = evaluation_with_tasks(project=project, admin=admin, model_a=models[0], model_b=models[1], n=12)
    judge_user = member(project, username="boot")
    for task, outcome in zip(Task.objects.filter(metadata__evaluation=evaluation.pk).order_by("id"), "aaaaaaaaabbb"):
        judge(task, judge_user, outcome)
    board = {row["model"]["name"]: row for row in evaluations.leaderboard(project=project)}
    strong, weak = board["sft-1"], board["rlhf-1"]
    assert strong["rating_low"] < strong["rating"] < strong["rating_high"]
    assert weak["rating_low"] < weak["rating"] < weak["rating_high"] and weak["rating_high"] < strong["rating_high"]
    # The same resampling, called directly, gives the same interval (seeded, and cached per set of judgements).
    outcomes = [(models[0].pk, models[1].pk, 1.0)] * 9 + [(models[0].pk, models[1].pk, 0.0)] * 3
    low, high = stats.bradley_terry_intervals(outcomes)[models[0].pk]
    assert (strong["rating_low"], strong["rating_high"]) == (
        round(evaluations.ELO_BASE + evaluations.ELO_SCALE * low, 1),
        round(evaluations.ELO_BASE + evaluations.ELO_SCALE * high, 1),
    )


@pytest.mark.django_db
def test_the_evaluation_form_starts_from_the_newest_model_and_its_parent(client, project, admin, models):
    from tests.factories import model_version

    child = model_version(name="child-of-sft", kind="policy", path="models/child", project=project, parent=models[0])
    client.force_login(admin)
    page = client.get("/training/evaluations/new/").content.decode()
    assert re.search(rf'<option value="{models[0].pk}" selected', page.split('name="model_a"')[1].split("</select>")[0])
    assert re.search(rf'<option value="{child.pk}" selected', page.split('name="model_b"')[1].split("</select>")[0])


@pytest.mark.django_db
def test_an_evaluations_generation_job_is_in_the_jobs_list_with_both_models(client, project, admin, models, enqueued):
    evaluation = evaluation_with_tasks(project=project, admin=admin, model_a=models[0], model_b=models[1], n=2)
    job = GenerationJob.objects.get(evaluation=evaluation)
    client.force_login(admin)
    listing = client.get("/training/generation/").content.decode()
    row = re.search(rf'<tr data-job-id="{job.pk}">(.*?)</tr>', listing, re.S).group(1)
    assert "sft-1" in row and "vs rlhf-1" in row
    assert f'href="/training/evaluations/{evaluation.pk}/">evaluation #{evaluation.pk}</a>' in row
    detail = client.get(f"/training/generation/{job.pk}/")
    assert detail.status_code == 200 and f"/training/evaluations/{evaluation.pk}/" in detail.content.decode()
