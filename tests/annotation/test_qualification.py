"""Qualification over HTTP: only gold until qualified, held out below the bar, re-admitted by an admin;
the gold settings and their bounds; each labeler's gold accuracy with its Wilson interval."""

import uuid

import pytest
from scipy.stats import binomtest

from annotation.models import GoldRecord, Membership, Task
from tests.factories import ProjectFactory, TaskFactory, UserFactory, gold_comparison_task, member

pytestmark = pytest.mark.django_db

Status = GoldRecord.Status


def next_task(client, project, kind=None):
    return client.post(f"/api/projects/{project.pk}/next/" + (f"?kind={kind}" if kind else ""))


def judge(client, project, *, right: bool):
    """Claim a task; if it is a gold comparison answer it right or wrong, else write an answer. Returns its id."""
    response = next_task(client, project)
    assert response.status_code == 200, response.content
    payload = response.json()
    task = Task.objects.get(pk=payload["id"])
    body = {"client_id": str(uuid.uuid4())}
    if task.kind == Task.Kind.DEMONSTRATION:
        body["text"] = "An answer."
    else:
        best, rest = task.gold["ranking"] if task.is_gold else ([payload["responses"][0]["id"]],
                                                                  [payload["responses"][1]["id"]])
        body.update(ranking=[best, rest] if right else [rest, best], strength="better")
    assert client.post(f"/api/tasks/{task.pk}/annotations/", body, format="json").status_code == 201
    return task


@pytest.fixture
def project():
    project = ProjectFactory(qualification_tasks=3, qualification_min_accuracy=2 / 3)
    for i in range(5):
        gold_comparison_task(project=project, texts=(f"Right {i}", f"Wrong {i}"))
    TaskFactory.create_batch(4, project=project)
    return project


@pytest.fixture
def admin(project):
    return member(project, role=Membership.Role.ADMIN, username="the-admin")


def test_only_gold_until_qualified_then_real_work(client_for, project):
    labeler = member(project)
    api = client_for(labeler)
    assert api.get(f"/api/projects/{project.pk}/qualification/").json()["status"] == Status.QUALIFYING
    served = [judge(api, project, right=right) for right in (True, False, True)]
    assert all(task.is_gold and task.kind == Task.Kind.COMPARISON for task in served)
    state = api.get(f"/api/projects/{project.pk}/qualification/").json()
    assert state == {**state, "status": Status.QUALIFIED, "answered": 3, "correct": 2}
    assert "You are qualified" in state["message"]
    # Real work now; at a gold rate of 0, only real work.
    assert not any(judge(api, project, right=True).is_gold for _ in range(4))
    assert next_task(api, project).status_code == 204


def test_below_the_bar_the_labeler_is_held_out_until_an_admin_readmits(client_for, client, project, admin):
    labeler = member(project, username="careless")
    api = client_for(labeler)
    for right in (False, True, False):
        judge(api, project, right=right)
    refused = next_task(api, project)
    assert refused.status_code == 403
    body = refused.json()
    assert "held out" in body["detail"] and "1 of your 3" in body["detail"] and "67%" in body["detail"]
    assert body["qualification"]["status"] == Status.HELD_OUT
    assert api.get(f"/api/projects/{project.pk}/qualification/").json()["status"] == Status.HELD_OUT
    client.force_login(labeler)  # the labeling page says so too
    page = client.get(f"/projects/{project.pk}/label/comparison/")
    assert page.status_code == 403 and "held out of this project" in page.content.decode()

    url = f"/api/projects/{project.pk}/qualification/{labeler.pk}/readmit/"
    assert api.post(url).status_code == 403  # labelers may not
    stranger = UserFactory()
    assert client_for(admin).post(f"/api/projects/{project.pk}/qualification/{stranger.pk}/readmit/").status_code == 404
    row = client_for(admin).post(url).json()
    assert row["qualification"] == Status.QUALIFIED and row["readmitted_by"] == "the-admin"
    record = GoldRecord.objects.get(project=project, labeler=labeler)
    assert record.readmitted_by == admin and record.readmitted_at is not None
    assert (record.decided_answered, record.decided_correct) == (3, 1)  # the decision's tally is kept
    assert not Task.objects.get(pk=next_task(api, project).json()["id"]).is_gold
    assert "admin admitted you" in api.get(f"/api/projects/{project.pk}/qualification/").json()["message"]


def test_the_settings_page_readmits_with_a_button(client, project, admin):
    labeler = member(project, username="held")
    GoldRecord.objects.create(project=project, labeler=labeler, status=Status.HELD_OUT, gold_answered=3,
                              decided_answered=3, decided_correct=0)
    client.force_login(admin)
    page = client.get(f"/projects/{project.pk}/settings/").content.decode()
    assert 'data-qualification="held_out"' in page and f"/settings/members/{labeler.pk}/readmit/" in page
    response = client.post(f"/projects/{project.pk}/settings/members/{labeler.pk}/readmit/")
    assert response.status_code == 302
    assert GoldRecord.objects.get(labeler=labeler).status == Status.QUALIFIED
    client.force_login(labeler)
    assert client.post(f"/projects/{project.pk}/settings/members/{labeler.pk}/readmit/").status_code == 403


def test_while_qualifying_demonstrations_wait_and_the_page_says_why(client_for, client, project):
    labeler = member(project)
    refused = next_task(client_for(labeler), project, kind="demonstration")
    assert refused.status_code == 403 and "Qualify first" in refused.json()["detail"]
    client.force_login(labeler)
    page = client.get(f"/projects/{project.pk}/label/demonstration/")
    assert page.status_code == 403 and "Open the comparisons" in page.content.decode()
    page = client.get(f"/projects/{project.pk}/label/comparison/").content.decode()
    assert 'id="qualification-banner"' in page and "0 of 3 answered" in page


def test_a_skip_while_qualifying_counts_as_a_wrong_answer(client_for, project):
    labeler = member(project)
    api = client_for(labeler)
    judge(api, project, right=True)
    judge(api, project, right=True)
    task_id = next_task(api, project).json()["id"]
    assert api.post(f"/api/tasks/{task_id}/skip/", {"reason": "Hard."}, format="json").status_code == 201
    record = GoldRecord.objects.get(labeler=labeler)
    assert (record.status, record.qualification_skips, record.decided_correct) == (Status.QUALIFIED, 1, 2)


def test_fewer_gold_tasks_than_asked_the_labeler_waits_until_n_is_lowered(client_for):
    project = ProjectFactory(qualification_tasks=4, qualification_min_accuracy=0.5)
    admin = member(project, role=Membership.Role.ADMIN)
    for i in range(2):
        gold_comparison_task(project=project, texts=(f"R{i}", f"W{i}"))
    TaskFactory(project=project)
    labeler = member(project)
    api = client_for(labeler)
    judge(api, project, right=True)
    judge(api, project, right=False)
    waiting = next_task(api, project)
    assert waiting.status_code == 403
    assert "answered all 2 qualification tasks" in waiting.json()["detail"]
    assert waiting.json()["qualification"]["status"] == Status.QUALIFYING
    summary = client_for(admin).get(f"/api/projects/{project.pk}/gold/").json()
    assert summary["qualification_short"] is True
    # Lowering N decides those who have reached it, at once.
    patched = client_for(admin).patch(f"/api/projects/{project.pk}/", {"qualification_tasks": 2}, format="json")
    assert patched.status_code == 200 and patched.json()["qualification_tasks"] == 2
    assert GoldRecord.objects.get(labeler=labeler).status == Status.QUALIFIED  # 1 of 2 >= 50%
    assert next_task(api, project).status_code == 200


def test_changing_the_bar_later_decides_nobody_again(client_for, project, admin):
    labeler = member(project)
    api = client_for(labeler)
    for right in (True, True, False):
        judge(api, project, right=right)
    assert GoldRecord.objects.get(labeler=labeler).status == Status.QUALIFIED
    client_for(admin).patch(f"/api/projects/{project.pk}/", {"qualification_min_accuracy": 1.0}, format="json")
    assert GoldRecord.objects.get(labeler=labeler).status == Status.QUALIFIED
    assert next_task(api, project).status_code == 200


def test_qualification_turned_on_later_decides_on_the_gold_answers_given_so_far(client_for):
    project = ProjectFactory(gold_rate=1.0)
    admin = member(project, role=Membership.Role.ADMIN)
    for i in range(3):
        gold_comparison_task(project=project, texts=(f"R{i}", f"W{i}"))
    TaskFactory.create_batch(5, project=project)
    veteran, newcomer = member(project), member(project)
    for right in (True, True):
        judge(client_for(veteran), project, right=right)
    assert client_for(admin).patch(
        f"/api/projects/{project.pk}/", {"qualification_tasks": 2}, format="json").status_code == 200
    assert GoldRecord.objects.get(labeler=veteran).status == Status.QUALIFIED
    assert next_task(client_for(newcomer), project, kind="demonstration").status_code == 403


def test_a_held_out_labeler_removed_and_added_again_stays_held_out(client_for, client, project, admin):
    labeler = member(project, username="returner")
    api = client_for(labeler)
    for _ in range(3):
        judge(api, project, right=False)
    client.force_login(admin)
    assert client.post(f"/projects/{project.pk}/settings/members/{labeler.pk}/remove/").status_code == 302
    assert next_task(api, project).status_code == 404
    add = client.post(f"/projects/{project.pk}/settings/members/", {"username": "returner", "role": "labeler"})
    assert add.status_code == 302
    assert next_task(api, project).status_code == 403


def test_turning_qualification_off_lets_everyone_label(client_for, project, admin):
    labeler = member(project)
    api = client_for(labeler)
    for _ in range(3):
        judge(api, project, right=False)
    assert next_task(api, project).status_code == 403
    client_for(admin).patch(f"/api/projects/{project.pk}/", {"qualification_tasks": 0}, format="json")
    assert next_task(api, project).status_code == 200
    assert api.get(f"/api/projects/{project.pk}/qualification/").json()["status"] == "off"


# Settings ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("gold_rate", 1.5), ("gold_rate", -0.1), ("gold_rate", "lots"), ("gold_rate", "NaN"),
        ("qualification_tasks", -1), ("qualification_tasks", 1001), ("qualification_tasks", 2.5),
        ("qualification_min_accuracy", 1.01), ("qualification_min_accuracy", "Infinity"),
        ("gold_training_mode", "maybe"),
    ],
)
def test_bad_gold_settings_are_400s_on_the_field_and_change_nothing(client_for, project, admin, field, value):
    response = client_for(admin).patch(f"/api/projects/{project.pk}/", {field: value}, format="json")
    assert response.status_code == 400 and field in response.json(), response.content
    project.refresh_from_db()
    assert (project.gold_rate, project.qualification_tasks, project.qualification_min_accuracy) == (0, 3, 2 / 3)


def test_the_settings_api_and_page_set_the_gold_settings(client_for, client, project, admin):
    body = {"gold_rate": 0.1, "gold_training_mode": True, "qualification_tasks": 5, "qualification_min_accuracy": 0.9}
    response = client_for(admin).patch(f"/api/projects/{project.pk}/", body, format="json")
    assert response.status_code == 200 and {k: response.json()[k] for k in body} == body
    assert client_for(member(project)).patch(f"/api/projects/{project.pk}/", body, format="json").status_code == 403
    client.force_login(admin)
    page = client.get(f"/projects/{project.pk}/settings/").content.decode()
    assert 'id="gold-settings"' in page and 'name="gold_rate" value="0.1"' in page
    assert 'id="qualification-short"' not in page  # 5 gold comparisons for 5 answers
    form = {"name": project.name, "guidelines": "", "overlap": 1, "lease_seconds": 600, "gold_rate": "0.25",
            "qualification_tasks": "8", "qualification_min_accuracy": "0.75"}
    assert client.post(f"/projects/{project.pk}/settings/", form).status_code == 302
    project.refresh_from_db()
    assert (project.gold_rate, project.gold_training_mode, project.qualification_tasks,
            project.qualification_min_accuracy) == (0.25, False, 8, 0.75)
    page = client.get(f"/projects/{project.pk}/settings/").content.decode()
    assert 'id="qualification-short"' in page and "has 5 gold comparisons" in page
    bad = client.post(f"/projects/{project.pk}/settings/", {**form, "gold_rate": "2", "qualification_tasks": "-1"})
    assert bad.status_code == 400
    assert set(bad.context["settings_form"].errors) == {"gold_rate", "qualification_tasks"}


# Accuracy ---------------------------------------------------------------------------------------


def test_gold_accuracy_and_its_wilson_interval_in_the_api_and_on_the_dashboard(client_for, client):
    project = ProjectFactory(gold_rate=1.0, name="Gold project")
    golds = [gold_comparison_task(project=project, texts=(f"R{i}", f"W{i}")) for i in range(10)]
    TaskFactory.create_batch(12, project=project)
    admin = member(project, role=Membership.Role.ADMIN, username="gold-admin")
    good, poor = member(project, username="good"), member(project, username="poor")
    for labeler, rights in ((good, 8), (poor, 3)):
        api = client_for(labeler)
        for index in range(10):
            assert judge(api, project, right=index < rights).pk == golds[index].pk
    body = client_for(admin).get(f"/api/projects/{project.pk}/gold/").json()
    assert body["gold_tasks"] == {"demonstration": 0, "comparison": 10}
    assert (body["answered"], body["correct"]) == (20, 11)
    rows = {row["username"]: row for row in body["labelers"]}
    for name, rights in (("good", 8), ("poor", 3)):
        row = rows[name]
        interval = binomtest(rights, 10).proportion_ci(confidence_level=0.95, method="wilson")
        assert (row["answered"], row["correct"], row["served"]) == (10, rights, 10)
        assert row["accuracy"] == rights / 10
        assert (row["ci_low"], row["ci_high"]) == (interval.low, interval.high)
    # The published figure for 8 of 10 (Wilson 1927; e.g. Newcombe 1998, table I): 0.490 to 0.943.
    assert (round(rows["good"]["ci_low"], 3), round(rows["good"]["ci_high"], 3)) == (0.490, 0.943)

    engineer = member(project, role=Membership.Role.ENGINEER)
    assert client_for(engineer).get(f"/api/projects/{project.pk}/gold/").status_code == 200
    assert client_for(good).get(f"/api/projects/{project.pk}/gold/").status_code == 403
    assert client_for(UserFactory()).get(f"/api/projects/{project.pk}/gold/").status_code == 404

    client.force_login(admin)
    page = client.get(f"/projects/{project.pk}/dashboard/")
    html = page.content.decode()
    assert 'id="gold-table"' in html and 'id="gold-chart"' in html and "/static/js/gold_dashboard.js" in html
    assert "0.490 – 0.943" in html
    chart = page.context["gold_chart"]
    assert chart["names"] == ["good", "poor"] and chart["accuracy"] == [80.0, 30.0]
