"""Gold tasks: served at the project's rate, at most once per labeler, never full, never progress,
indistinguishable from real tasks, graded at submit, and revealed only in training mode."""

import json
import re
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from annotation import gold
from annotation.models import Annotation, GoldRecord, Lease, Task
from tests.factories import ProjectFactory, TaskFactory, comparison_task, gold_comparison_task, member

pytestmark = pytest.mark.django_db


def next_task(client, project, kind=None):
    return client.post(f"/api/projects/{project.pk}/next/" + (f"?kind={kind}" if kind else ""))


def submit(client, task_id, **body):
    body.setdefault("client_id", str(uuid.uuid4()))
    return client.post(f"/api/tasks/{task_id}/annotations/", body, format="json")


def answer(client, payload, *, best_first=True):
    """Submit a plausible answer: a text, or the shown responses in display order (reversed if not best_first)."""
    if payload["kind"] == "demonstration":
        return submit(client, payload["id"], text="An answer.")
    ids = [r["id"] for r in payload["responses"]]
    ids = ids if best_first else ids[::-1]
    return submit(client, payload["id"], ranking=[[i] for i in ids], strength="better")


def gold_demo(project, **kwargs):
    return TaskFactory(project=project, is_gold=True, gold={"reference": "The answer.", "explanation": ""}, **kwargs)


# The draw ------------------------------------------------------------------------------------


def test_the_draw_serves_gold_at_the_rate_over_many_claims():
    # Fixed inputs give fixed draws: this cannot flake. The tolerance is 6 standard deviations.
    draws = [gold.gold_draw(project_id=7, labeler_id=labeler, task_id=task, served=0)
             for labeler in range(100) for task in range(1000)]
    for rate in (0.05, 0.1, 0.5):
        share = sum(gold.serves_gold(rate=rate, draw=d) for d in draws) / len(draws)
        assert abs(share - rate) < 6 * (rate * (1 - rate) / len(draws)) ** 0.5
    assert all(0 <= d < 1 for d in draws)
    assert gold.gold_draw(project_id=7, labeler_id=1, task_id=2, served=3) == gold.gold_draw(
        project_id=7, labeler_id=1, task_id=2, served=3)
    assert gold.gold_draw(project_id=7, labeler_id=1, task_id=2, served=3) != gold.gold_draw(
        project_id=7, labeler_id=1, task_id=2, served=4)


def test_each_claim_serves_gold_exactly_when_the_draw_says_so(client_for):
    project = ProjectFactory(gold_rate=0.3)
    labeler = member(project)
    real = [TaskFactory(project=project) for _ in range(40)]
    golds = [gold_demo(project) for _ in range(40)]
    client = client_for(labeler)
    done, served, gold_ids = set(), 0, []
    for _ in range(200):
        payload = next_task(client, project)
        if payload.status_code == 204:
            break
        # The real task this claim would get: the oldest one the labeler has not done.
        candidate = min(t.pk for t in real if t.pk not in done)
        draw = gold.gold_draw(project_id=project.pk, labeler_id=labeler.pk, task_id=candidate, served=served)
        expect_gold = served < len(golds) and gold.serves_gold(rate=0.3, draw=draw)
        task = Task.objects.get(pk=payload.json()["id"])
        assert task.is_gold == expect_gold
        if task.is_gold:
            served += 1
            gold_ids.append(task.pk)
        else:
            assert task.pk == candidate
            done.add(task.pk)
        assert answer(client, payload.json()).status_code == 201
    assert done == {t.pk for t in real}, "every real task was served"
    # served > 0: 40 real claims at 30% with no gold has odds of 0.7**40, 6e-7. The share itself is
    # the draw's (test above); here each claim follows it exactly.
    assert len(gold_ids) == len(set(gold_ids)) == served > 0, "no gold task twice"
    assert GoldRecord.objects.get(project=project, labeler=labeler).gold_served == served


def test_gold_tasks_never_fill_up_and_each_labeler_gets_each_once(client_for):
    project = ProjectFactory(gold_rate=1.0, overlap=1)
    golds = [gold_comparison_task(project=project, texts=(f"Right {i}.", f"Wrong {i}.")) for i in range(2)]
    TaskFactory.create_batch(6, project=project)
    for labeler in [member(project) for _ in range(3)]:
        client = client_for(labeler)
        seen = []
        for _ in range(4):
            payload = next_task(client, project).json()
            seen.append(payload["id"])
            assert answer(client, payload).status_code == 201
        # At a rate of 1 every claim is gold while one is left; then real work, never a gold task again.
        assert seen[:2] == [g.pk for g in golds]
        assert not Task.objects.filter(pk__in=seen[2:], is_gold=True).exists()
    for task in golds:
        task.refresh_from_db()
        assert task.status == Task.Status.OPEN and task.done == 3 > task.required
        assert Annotation.objects.filter(task=task).count() == 3


def test_an_expired_gold_lease_is_not_served_again(client_for):
    project = ProjectFactory(gold_rate=1.0)
    labeler = member(project)
    first, second = gold_demo(project), gold_demo(project)
    TaskFactory.create_batch(2, project=project)
    client = client_for(labeler)
    assert next_task(client, project).json()["id"] == first.pk
    Lease.objects.filter(labeler=labeler).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert next_task(client, project).json()["id"] == second.pk
    assert submit(client, first.pk, text="Late, but kept.").status_code == 201  # the expired lease still submits


def test_no_gold_is_served_when_no_real_task_is_left(client_for):
    project = ProjectFactory(gold_rate=1.0)
    labeler = member(project)
    gold_demo(project)
    # Served alone, a gold task would be told apart: the project looks done.
    assert next_task(client_for(labeler), project).status_code == 204


def test_gold_never_blocks_real_work(client_for):
    project = ProjectFactory(gold_rate=1.0, overlap=2)
    labeler = member(project)
    gold_demo(project)
    real = TaskFactory.create_batch(3, project=project)
    client = client_for(labeler)
    ids = []
    while (payload := next_task(client, project)).status_code == 200:
        ids.append(payload.json()["id"])
        answer(client, payload.json())
    assert ids[1:] == [t.pk for t in real]


def test_resume_after_reload_and_heartbeat_work_for_gold_tasks(client_for):
    project = ProjectFactory(gold_rate=1.0, overlap=1)
    task = gold_comparison_task(project=project)
    TaskFactory(project=project)
    a, b = member(project), member(project)
    first = next_task(client_for(a), project).json()
    assert first["id"] == task.pk
    again = next_task(client_for(a), project).json()
    assert again == {**first, "server_time": again["server_time"]}  # the same task and lease after a reload
    assert Lease.objects.filter(labeler=a).count() == 1
    assert next_task(client_for(b), project).json()["id"] == task.pk  # overlap 1, yet b gets it too
    Lease.objects.filter(labeler=a).update(expires_at=timezone.now() - timedelta(seconds=1))
    beat = client_for(a).post(f"/api/tasks/{task.pk}/heartbeat/")
    assert beat.status_code == 200, beat.content  # a gold task has room whoever else holds it


def test_gold_tasks_are_no_progress(client_for, client):
    project = ProjectFactory(gold_rate=1.0)
    labeler = member(project, username="progress-labeler")
    comparison_task(project=project)
    gold_comparison_task(project=project)
    gold_demo(project)
    api = client_for(labeler)
    assert answer(api, next_task(api, project).json()).status_code == 201  # a gold one
    progress = api.get(f"/api/projects/{project.pk}/").json()["progress"]
    assert (progress["tasks"], progress["done_tasks"], progress["percent"]) == (1, 0, 0.0)
    assert progress["by_kind"]["comparison"]["annotations"] == 0
    assert "demonstration" not in progress["by_kind"]
    from annotation.dashboard import dashboard_progress

    assert (dashboard_progress(project=project)["tasks"], dashboard_progress(project=project)["annotations"]) == (1, 0)
    client.force_login(labeler)
    listed = client.get("/").context["rows"][0]
    assert listed["progress"]["tasks"] == 1 and [k["open"] for k in listed["kinds"]] == [1]


def test_changing_the_overlap_leaves_gold_tasks_open():
    from annotation.services import project_update

    project = ProjectFactory(overlap=3)
    task = gold_demo(project, done=2)
    project_update(project=project, overlap=1)
    task.refresh_from_db()
    assert task.status == Task.Status.OPEN


# What the labeler sees --------------------------------------------------------------------------


def _same_pair(project):
    """A real and a gold comparison that show the same prompt and texts in the same display order."""
    messages = [{"role": "user", "content": "Which is kinder?"}]
    real = comparison_task(project=project, texts=("Warm reply.", "Cold reply."), priority=1)
    fake = gold_comparison_task(project=project, texts=("Warm reply.", "Cold reply."), explanation="Warmth.")
    for task in (real, fake):
        task.prompt.messages = messages
        task.prompt.save()
    return real, fake


def _payload_shape(payload: dict) -> dict:
    """The payload with its task id, response ids and times replaced by placeholders."""
    return {
        **payload, "id": "TASK", "lease_expires_at": "TIME", "server_time": "TIME",
        "responses": [{**r, "id": f"R{i}"} for i, r in enumerate(payload["responses"])],
    }


def _page_shape(html: str, payload: dict, username: str) -> str:
    """The page with its embedded payload, ids, CSRF tokens and user name replaced by placeholders."""
    html = re.sub(r'(<script id="task-data" type="application/json">).*?(</script>)', r"\1PAYLOAD\2", html, flags=re.S)
    html = html.replace(f'data-task-id="{payload["id"]}"', 'data-task-id="TASK"')
    html = html.replace(f'/api/tasks/{payload["id"]}/', "/api/tasks/TASK/")
    for index, response in enumerate(payload["responses"]):
        html = html.replace(f'data-response-id="{response["id"]}"', f'data-response-id="R{index}"')
    html = re.sub(r'(csrfmiddlewaretoken" value=|data-csrf-token=)"[^"]+"', r'\1"CSRF"', html)
    return html.replace(username, "USER")


def test_the_payload_and_page_of_a_gold_task_equal_a_real_ones(client_for, client):
    project = ProjectFactory(gold_rate=1.0)
    real, fake = _same_pair(project)
    gold_labeler, real_labeler = member(project, username="labeler-one"), member(project, username="labeler-two")
    seen = {}
    for labeler, expected in ((gold_labeler, fake), (real_labeler, real)):
        if labeler is real_labeler:
            project.gold_rate = 0
            project.save()
        payload = next_task(client_for(labeler), project).json()
        assert payload["id"] == expected.pk
        client.force_login(labeler)
        page = client.get(f"/projects/{project.pk}/label/comparison/")
        assert page.status_code == 200
        embedded = json.loads(re.search(r'<script id="task-data" type="application/json">(.*?)</script>',
                                        page.content.decode(), flags=re.S).group(1))
        ids = [r["id"] for r in payload["responses"]]
        assert ids == list(expected.task_responses.order_by("position").values_list("response_id", flat=True))
        seen[labeler.username] = (
            _payload_shape(payload),
            _payload_shape(embedded),
            _page_shape(page.content.decode(), payload, labeler.username),
        )
    gold_payload, gold_embedded, gold_page = seen["labeler-one"]
    real_payload, real_embedded, real_page = seen["labeler-two"]
    assert gold_payload == real_payload and list(gold_payload) == list(real_payload)  # the same keys, in order
    assert gold_embedded == real_embedded == gold_payload
    assert gold_page == real_page
    assert "Warmth." not in gold_page and "is_gold" not in gold_page  # nor the explanation, nor a flag


# Grading ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gold_ranking", "ranking", "matches"),
    [
        ([[1], [2]], [[1], [2]], True),
        ([[1], [2], [3]], [[1], [3], [2]], True),  # only the top group counts
        ([[1], [2]], [[2], [1]], False),
        ([[1, 2]], [[2, 1]], True),  # a tie matches the same tie, in any order
        ([[1, 2]], [[1], [2]], False),  # ... and nothing else
        ([[1], [2]], [[1, 2]], False),
        ([[1], [2]], [], False),  # all bad, nothing ranked
        ([[1], [2]], [1, 2], True),  # a bare id is a group of one
    ],
)
def test_a_judgement_matches_gold_when_its_top_group_is_golds(gold_ranking, ranking, matches):
    assert gold.gold_matches(gold_ranking=gold_ranking, ranking=ranking) is matches


def test_a_submit_on_a_gold_task_is_graded_in_the_same_transaction(client_for):
    project = ProjectFactory(gold_rate=1.0)
    golds = [gold_comparison_task(project=project, texts=(f"Right {i}", f"Wrong {i}")) for i in range(4)]
    gold_demo(project)
    real = comparison_task(project=project, priority=-1)
    labeler = member(project)
    api = client_for(labeler)

    def ranked(task, right_first=True, tie=False):
        right, wrong = task.gold["ranking"][0][0], task.gold["ranking"][1][0]
        if tie:
            return {"ranking": [[right, wrong]]}
        return {"ranking": [[right], [wrong]] if right_first else [[wrong], [right]], "strength": "better"}

    assert next_task(api, project).json()["id"] == golds[0].pk
    assert submit(api, golds[0].pk, **ranked(golds[0])).status_code == 201
    assert next_task(api, project).json()["id"] == golds[1].pk
    assert submit(api, golds[1].pk, **ranked(golds[1], right_first=False)).status_code == 201
    assert next_task(api, project).json()["id"] == golds[2].pk
    assert submit(api, golds[2].pk, **ranked(golds[2], tie=True)).status_code == 201
    assert next_task(api, project).json()["id"] == golds[3].pk
    assert api.post(f"/api/tasks/{golds[3].pk}/skip/", {"reason": "Unsure."}, format="json").status_code == 201
    demo = next_task(api, project).json()
    assert demo["kind"] == "demonstration"
    assert submit(api, demo["id"], text="Mine.").status_code == 201
    real_payload = next_task(api, project).json()
    assert real_payload["id"] == real.pk
    assert answer(api, real_payload).status_code == 201

    graded = dict(Annotation.objects.filter(labeler=labeler).values_list("task_id", "gold_correct"))
    assert graded == {golds[0].pk: True, golds[1].pk: False, golds[2].pk: False, golds[3].pk: None,
                      demo["id"]: None, real.pk: None}
    record = GoldRecord.objects.get(project=project, labeler=labeler)
    assert (record.gold_served, record.gold_answered, record.gold_correct) == (5, 3, 1)


def test_a_replayed_submit_is_counted_once(client_for):
    project = ProjectFactory(gold_rate=1.0)
    task = gold_comparison_task(project=project)
    TaskFactory(project=project)
    labeler = member(project)
    api = client_for(labeler)
    next_task(api, project)
    body = {"client_id": str(uuid.uuid4()), "ranking": task.gold["ranking"], "strength": "better"}
    assert submit(api, task.pk, **body).status_code == 201
    assert submit(api, task.pk, **body).status_code == 200
    record = GoldRecord.objects.get(labeler=labeler)
    assert (record.gold_answered, record.gold_correct) == (1, 1)


# Training mode ----------------------------------------------------------------------------------


def test_training_mode_shows_the_expected_answer_after_a_gold_submit_and_only_then(client_for):
    project = ProjectFactory(gold_rate=1.0, gold_training_mode=True)
    real, fake = _same_pair(project)
    demo = gold_demo(project, priority=-5)
    labeler = member(project)
    api = client_for(labeler)
    assert next_task(api, project).json()["id"] == fake.pk
    right, wrong = fake.gold["ranking"][0][0], fake.gold["ranking"][1][0]
    body = submit(api, fake.pk, ranking=[[wrong], [right]], strength="better").json()
    assert body["gold"] == {"kind": "comparison", "ranking": [[right], [wrong]], "reference": "",
                            "explanation": "Warmth.", "correct": False}
    assert next_task(api, project).json()["id"] == demo.pk
    skipped = api.post(f"/api/tasks/{demo.pk}/skip/", {"reason": "Unsure."}, format="json").json()
    assert skipped["gold"] == {"kind": "demonstration", "ranking": [], "reference": "The answer.",
                               "explanation": "", "correct": None}
    assert next_task(api, project).json()["id"] == real.pk
    assert "gold" not in answer(api, next_task(api, project).json()).json()


def test_without_training_mode_a_gold_submit_answers_as_a_real_one(client_for):
    project = ProjectFactory(gold_rate=1.0)
    real, fake = _same_pair(project)
    api = client_for(member(project))
    assert next_task(api, project).json()["id"] == fake.pk
    gold_body = answer(api, next_task(api, project).json()).json()
    real_body = answer(api, next_task(api, project).json()).json()
    assert real_body["task"] == real.pk
    assert set(gold_body) == set(real_body) and "gold" not in gold_body and "gold_correct" not in gold_body


# The claim's statements -------------------------------------------------------------------------


@pytest.mark.skipif(connection.vendor != "postgresql", reason="EXPLAIN of PostgreSQL's plans")
def test_the_claim_statements_use_the_partial_indexes():
    from annotation.sql import claim as claiming

    project = ProjectFactory(gold_rate=0.1, qualification_tasks=2)
    labeler = member(project)
    TaskFactory.create_batch(3, project=project)
    gold_demo(project)

    def plan(sql, params):
        with connection.cursor() as cursor:
            # Tiny tables: ask what the statements CAN use. With sorts and full scans priced out,
            # only a walk of an index in the claim's order (the partial ones) stays cheap.
            for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
                cursor.execute(f"SET LOCAL {setting} = off")
            cursor.execute("EXPLAIN " + sql, params)
            return "\n".join(row[0] for row in cursor.fetchall())

    real = plan(claiming._CANDIDATE.format(kind="", skipped="", lock=""),
                [project.pk, timezone.now(), labeler.pk, labeler.pk])
    assert "task_claim_any" in real, real
    for kind, index in (("", "task_gold_any"), ("AND t.kind = %s", "task_gold_")):
        sql = claiming._GOLD_CANDIDATE.format(kind=kind)
        params = [project.pk] + (["demonstration"] if kind else []) + [labeler.pk] * 3
        text = plan(sql, params)
        assert index in text and "Seq Scan" not in text and "Sort" not in text, text
    lock = plan(claiming._LOCK_MEMBER_GOLD.format(sync="", lock="FOR UPDATE OF m"), [project.pk, labeler.pk])
    assert "Index" in lock and "Seq Scan" not in lock, lock


def test_gold_answers_are_graded_not_sent_to_review(client_for):
    from annotation.models import ReviewItem

    project = ProjectFactory(gold_rate=1.0, review_rate=1.0)
    golden = gold_comparison_task(project=project)
    real = comparison_task(project=project, priority=-1)
    api = client_for(member(project))
    assert next_task(api, project).json()["id"] == golden.pk
    assert answer(api, next_task(api, project).json()).status_code == 201
    assert next_task(api, project).json()["id"] == real.pk
    assert answer(api, next_task(api, project).json()).status_code == 201
    # The review rate takes every real answer; the gold one is already checked against its answer.
    assert list(ReviewItem.objects.values_list("task_id", flat=True)) == [real.pk]
