"""The review queue from the outside: what gets reviewed, the claim, the verdicts and who may do what."""

import json
import uuid
from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotation import dashboard, services
from annotation.errors import InvalidInput
from annotation.models import ANNOTATION_COUNTS, Annotation, Membership, ReviewItem, Task
from annotation.reviews import claiming, sampling
from annotation.reviews.sampling import BLOCK, RATE_STEPS, is_drawn, rate_steps, review_items_enqueue
from annotation.reviews.services import review_claim_next
from tests.factories import ProjectFactory, TaskFactory, UserFactory, comparison_task, member

pytestmark = pytest.mark.django_db


def label(project, labeler, *, text=None, ranking_from=None, strength="better"):
    """Claim the labeler's next task and submit: a demonstration's text, or the shown responses ranked in order."""
    task = services.task_claim_next(project=project, labeler=labeler)
    assert task is not None, f"{labeler} found no task"
    if task.kind == Task.Kind.DEMONSTRATION:
        data = {"text": text or f"Answer by {labeler.username} to task {task.pk}."}
    else:
        shown = list(task.task_responses.order_by("position").values_list("response_id", flat=True))
        order = ranking_from(shown) if ranking_from else shown
        data = {"ranking": [[rid] for rid in order], "strength": strength}
    annotation, created = services.annotation_submit(task=task, labeler=labeler, client_id=uuid.uuid4(), data=data)
    assert created
    return annotation


def claim(client, project):
    return client.post(f"/api/projects/{project.pk}/reviews/next/")


def decide(client, review_id, **body):
    body.setdefault("client_id", str(uuid.uuid4()))
    return client.post(f"/api/reviews/{review_id}/verdict/", body, format="json")


def export(client, project, fmt):
    response = client.get(f"/api/projects/{project.pk}/export/?format={fmt}")
    assert response.status_code == 200
    return [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]


@pytest.fixture
def reviewed():
    """Overlap 2, two demonstrations and a pair, each labeled by alice and bob, all flagged for review."""
    project = ProjectFactory(overlap=2)
    admin = member(project, Membership.Role.ADMIN, username="boss")
    reviewer = member(project, Membership.Role.REVIEWER, username="rita")
    alice, bob = member(project, username="alice"), member(project, username="bob")
    demos = [TaskFactory(project=project), TaskFactory(project=project)]
    pair = comparison_task(project=project, texts=("Left answer.", "Right answer."))
    work = [label(project, who) for _ in range(3) for who in (alice, bob)]
    assert review_items_enqueue(annotation_ids=[a.pk for a in work], reason="too fast") == 6
    return {"project": project, "admin": admin, "reviewer": reviewer, "alice": alice, "bob": bob,
            "demos": demos, "pair": pair, "work": work}


# What gets reviewed --------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.05, 0.1, 0.15, 0.25, 1 / 3, 0.5, 0.9])
def test_the_draw_gives_each_labeler_exactly_the_share_at_every_block(rate):
    for labeler_id in (1, 2, 77):
        drawn = [is_drawn(project_id=5, labeler_id=labeler_id, position=n, rate=rate) for n in range(1, 10 * BLOCK + 1)]
        for blocks in range(1, 11):
            # The rate counts in steps of 1/RATE_STEPS (a third is 0.3333): integers, no drift.
            expected = blocks * BLOCK * rate_steps(rate) // RATE_STEPS
            assert sum(drawn[: blocks * BLOCK]) == expected, (rate, labeler_id, blocks)
        # Between block ends it never strays by more than one block's quota.
        for n in range(1, len(drawn) + 1):
            assert abs(sum(drawn[:n]) - n * rate) <= BLOCK * rate + 1
    assert not any(is_drawn(project_id=1, labeler_id=1, position=n, rate=0) for n in range(1, 200))
    assert all(is_drawn(project_id=1, labeler_id=1, position=n, rate=1) for n in range(1, 200))


def test_the_draw_is_deterministic_but_differs_between_labelers():
    def positions(labeler_id):
        return [n for n in range(1, 5 * BLOCK + 1)
                if is_drawn(project_id=3, labeler_id=labeler_id, position=n, rate=0.2)]

    assert positions(1) == positions(1)
    assert positions(1) != positions(2)
    gaps = {b - a for a, b in zip(positions(1), positions(1)[1:])}
    assert len(gaps) > 1, "not a fixed every-fifth pattern a labeler could learn"


def test_each_labeler_gets_the_share_of_their_own_work_whatever_their_pace():
    project = ProjectFactory(overlap=3, review_rate=0.25)
    fast, slow, skipper = member(project, username="fast"), member(project, username="slow"), member(project)
    TaskFactory.create_batch(2 * BLOCK, project=project)
    for _ in range(2 * BLOCK):
        label(project, fast)
    for _ in range(BLOCK):
        label(project, slow)
    for _ in range(5):  # skips are never reviewed, and do not count toward the share
        task = services.task_claim_next(project=project, labeler=skipper)
        services.task_skip(task=task, labeler=skipper, reason="Not for me.")
    queued = Counter(ReviewItem.objects.values_list("labeler__username", flat=True))
    assert queued == {"fast": 10, "slow": 5}
    assert set(ReviewItem.objects.values_list("reason", "priority")) == {("sample", 0)}
    assert not ReviewItem.objects.filter(annotation__kind=Annotation.Kind.SKIP).exists()


def test_rate_zero_queues_nothing_and_costs_no_query(monkeypatch):

    project = ProjectFactory()
    labeler = member(project)
    TaskFactory.create_batch(3, project=project)

    def submit_one() -> int:
        task = services.task_claim_next(project=project, labeler=labeler)
        task = Task.objects.select_related("project").get(pk=task.pk)  # as the API loads it
        with CaptureQueriesContext(connection) as captured:
            services.annotation_submit(task=task, labeler=labeler, client_id=uuid.uuid4(), data={"text": "Fine."})
        return len(captured)

    submit_one()  # prepares the hot path's statements on this connection
    with_review = submit_one()
    monkeypatch.setattr(sampling, "annotation_sample_for_review", lambda **kwargs: None)
    assert with_review == submit_one(), "at rate 0 the review draw costs no query"
    assert not ReviewItem.objects.exists()


def test_enqueue_is_idempotent_and_flags_go_ahead_of_the_sample(client_for):
    project = ProjectFactory(review_rate=1.0)
    labeler, reviewer = member(project), member(project, Membership.Role.REVIEWER)
    TaskFactory.create_batch(3, project=project)
    *_, third = (label(project, labeler) for _ in range(3))
    assert ReviewItem.objects.filter(reason="sample").count() == 3
    task = TaskFactory(project=project)
    services.task_claim_next(project=project, labeler=labeler)
    skip, _ = services.task_skip(task=task, labeler=labeler, reason="Unclear.")

    assert review_items_enqueue(annotation_ids=[third.pk, skip.pk, 10**12], reason="position bias") == 0
    assert review_items_enqueue(annotation_ids=[third.pk], reason="position bias") == 0  # again: nothing new
    item = ReviewItem.objects.get(annotation=third)
    assert (item.reason, item.priority) == ("position bias", 1)
    assert not ReviewItem.objects.filter(annotation=skip).exists()
    assert ReviewItem.objects.count() == 3
    # The flagged one is claimed first.
    assert claim(client_for(reviewer), project).json()["annotation"]["id"] == third.pk


def test_enqueue_queues_new_work_once_and_never_again_after_a_verdict(reviewed, client_for):
    project, alice = reviewed["project"], reviewed["alice"]
    task = TaskFactory(project=project)
    extra = label(project, alice)
    assert extra.task_id == task.pk
    assert review_items_enqueue(annotation_ids=[extra.pk, extra.pk], reason="outlier") == 1
    assert review_items_enqueue(annotation_ids=[extra.pk], reason="outlier") == 0
    client = client_for(reviewed["reviewer"])
    while (claimed := claim(client, project)).status_code == 200:
        assert decide(client, claimed.json()["id"], verdict="accepted").status_code == 201
    assert review_items_enqueue(annotation_ids=[a.pk for a in reviewed["work"]] + [extra.pk], reason="later") == 0
    assert ReviewItem.objects.filter(status="decided").count() == 7


@pytest.mark.parametrize("ids, reason, field", [
    ([1], "", "reason"), ([1], "x" * 201, "reason"), ([1], None, "reason"),
    ("12", "flag", "annotation_ids"), ([0], "flag", "annotation_ids"), (["a"], "flag", "annotation_ids"),
    ([True], "flag", "annotation_ids"), (None, "flag", "annotation_ids"),
])
def test_enqueue_refuses_bad_input_by_name(ids, reason, field):
    with pytest.raises(InvalidInput) as error:
        review_items_enqueue(annotation_ids=ids, reason=reason)
    assert error.value.field == field
    assert not ReviewItem.objects.exists()


# The claim -------------------------------------------------------------------------------------------


def test_the_reviewer_sees_the_task_and_the_labelers_judgement_and_a_reload_resumes(reviewed, client_for):
    project, pair = reviewed["project"], reviewed["pair"]
    client = client_for(reviewed["reviewer"])
    seen = []
    while True:
        body = claim(client, project).json()
        assert claim(client, project).json()["id"] == body["id"], "a reload gets the same item back"
        seen.append(body)
        if body["task"]["id"] == pair.pk:
            break
        assert decide(client, body["id"], verdict="accepted").status_code == 201
    demo = seen[0]
    assert demo["task"]["kind"] == "demonstration" and demo["task"]["responses"] == []
    assert demo["annotation"]["text"].startswith("Answer by alice")
    assert demo["reason"] == "too fast" and demo["task"]["messages"][0]["role"] == "user"
    shown = list(pair.task_responses.order_by("position").values_list("response_id", flat=True))
    responses = seen[-1]["task"]["responses"]
    assert [r["id"] for r in responses] == shown, "in the display order the labeler saw"
    assert [r["place"] for r in responses] == [1, 2]
    assert seen[-1]["annotation"]["ranking"] == [[shown[0]], [shown[1]]]
    assert seen[-1]["annotation"]["strength"] == "better"
    assert "labeler" not in seen[-1]["annotation"], "the reviewer judges the work, not the person"
    assert ReviewItem.objects.filter(leased_by=reviewed["reviewer"]).count() == 1


def test_a_reviewer_never_gets_their_own_work_or_a_task_they_annotated(client_for):
    project = ProjectFactory(overlap=2)
    rita = member(project, Membership.Role.REVIEWER, username="rita")
    alice = member(project, username="alice")
    demo = TaskFactory(project=project)
    mine = label(project, rita)
    alices = label(project, alice)
    assert mine.task_id == alices.task_id == demo.pk
    # A comparison showing a response rita wrote: she may not judge it either.
    authored = comparison_task(project=project, texts=("Rita's.", "Other."), authors=[rita, None])
    judged = label(project, alice)
    assert judged.task_id == authored.pk
    review_items_enqueue(annotation_ids=[mine.pk, alices.pk, judged.pk], reason="check")
    client = client_for(rita)
    assert claim(client, project).status_code == 204
    other = member(project, Membership.Role.REVIEWER)
    taken = {claim(client_for(other), project).json()["annotation"]["id"]}
    assert taken <= {mine.pk, alices.pk, judged.pk}


def test_an_expired_lease_frees_the_item_and_a_late_verdict_is_refused(reviewed, client_for):
    project = reviewed["project"]
    first, second = client_for(reviewed["reviewer"]), client_for(reviewed["admin"])
    item_id = claim(first, project).json()["id"]
    assert claim(second, project).json()["id"] != item_id
    ReviewItem.objects.filter(pk=item_id).update(lease_expires_at="2000-01-01T00:00:00Z")
    assert decide(second, item_id, verdict="accepted").status_code == 409  # not theirs
    # The admin finishes their own item; the expired one is next for them.
    own = ReviewItem.objects.get(leased_by=reviewed["admin"])
    assert decide(second, own.pk, verdict="accepted").status_code == 201
    assert claim(second, project).json()["id"] == item_id
    late = decide(first, item_id, verdict="accepted")
    assert late.status_code == 409 and "another reviewer" in late.json()["detail"].lower()
    assert decide(second, item_id, verdict="accepted").status_code == 201


def test_the_claim_walks_its_partial_index_and_probes_the_rest():
    """EXPLAIN on a project whose queue holds some history: the plan PostgreSQL picks with real statistics."""
    project = ProjectFactory(overlap=3)
    labelers = [member(project) for _ in range(12)]
    reviewer = member(project, Membership.Role.REVIEWER)
    tasks = [TaskFactory(project=project, required=3) for _ in range(120)]
    Annotation.objects.bulk_create([
        Annotation(task=task, project=project, labeler=who, kind="demonstration", text="x", client_id=uuid.uuid4())
        for i, task in enumerate(tasks)
        for who in [labelers[(i + j) % 12] for j in range(3)] + ([reviewer] if i % 2 else [])
    ])
    ReviewItem.objects.bulk_create([
        ReviewItem(project=project, annotation=a, task_id=a.task_id, labeler_id=a.labeler_id, reason="sample",
                   status="decided" if k % 5 else "pending", verdict="accepted" if k % 5 else "")
        for k, a in enumerate(Annotation.objects.filter(project=project).exclude(labeler=reviewer).order_by("pk"))
    ])
    params = claiming.candidate_params(project_id=project.pk, reviewer_id=reviewer.pk, now=timezone.now(), skipped=[])
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE")
            cursor.execute("EXPLAIN " + claiming.candidate_sql(), params)
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + claiming.candidate_sql(), params)
        plan = "\n".join(str(row) for row in cursor.fetchall())
    assert "review_claim" in plan, plan
    assert "Sort" not in plan and "TEMP B-TREE" not in plan.upper(), "the index gives the order: " + plan
    assert "Seq Scan on annotation_reviewitem" not in plan, plan
    # The annotation check probes an index per item, or reads only this reviewer's own annotations.
    assert "Seq Scan on annotation_annotation" not in plan or f"labeler_id = {reviewer.pk})" in plan, plan
    assert review_claim_next(project=project, reviewer=reviewer).task_id in {t.pk for t in tasks[::2]}


# Verdicts ---------------------------------------------------------------------------------------------


def test_accept_is_idempotent_on_the_client_id(reviewed, client_for):
    project, client = reviewed["project"], client_for(reviewed["reviewer"])
    item_id = claim(client, project).json()["id"]
    client_id = str(uuid.uuid4())
    first = decide(client, item_id, verdict="accepted", client_id=client_id)
    again = decide(client, item_id, verdict="accepted", client_id=client_id)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json() and first.json()["verdict"] == "accepted"
    other = decide(client, item_id, verdict="rejected", comment="No.")
    assert other.status_code == 409 and "reviewed already" in other.json()["detail"]
    item = ReviewItem.objects.get(pk=item_id)
    assert item.annotation.review_state == "accepted" and item.reviewer == reviewed["reviewer"]
    # Someone else's client id is not a replay of theirs.
    assert decide(client_for(reviewed["admin"]), item_id, verdict="accepted", client_id=client_id).status_code == 409


def test_a_verdict_needs_the_lease(reviewed, client_for):
    item = ReviewItem.objects.first()
    response = decide(client_for(reviewed["reviewer"]), item.pk, verdict="accepted")
    assert response.status_code == 409 and "Claim this review first" in response.json()["detail"]
    assert ReviewItem.objects.get(pk=item.pk).status == "pending"


@pytest.mark.parametrize("body, field", [
    ({"verdict": "rejected"}, "comment"),
    ({"verdict": "rejected", "comment": "   "}, "comment"),
    ({"verdict": "maybe"}, "verdict"),
    ({"verdict": "accepted", "client_id": "nope"}, "client_id"),
    ({"verdict": "accepted", "correction": {"text": "x"}}, "correction"),
    ({"verdict": "corrected"}, "correction"),
    ({"verdict": "corrected", "correction": {"text": ""}}, "correction.text"),
    ({"verdict": "accepted", "time_spent_ms": -1}, "time_spent_ms"),
    ({"verdict": "rejected", "comment": "x" * 10_001}, "comment"),
])
def test_a_bad_verdict_names_the_field_and_changes_nothing(reviewed, client_for, body, field):
    client = client_for(reviewed["reviewer"])
    item_id = claim(client, reviewed["project"]).json()["id"]
    response = decide(client, item_id, **body)
    assert response.status_code == 400 and response.json()["field"] == field, response.content
    item = ReviewItem.objects.get(pk=item_id)
    assert item.status == "pending" and item.annotation.review_state == ""
    assert Annotation.objects.filter(labeler=reviewed["reviewer"]).count() == 0


def test_a_rejection_stops_counting_and_reopens_exactly_one_slot(reviewed, client_for):
    project, client = reviewed["project"], client_for(reviewed["reviewer"])
    body = claim(client, project).json()
    task = Task.objects.get(pk=body["task"]["id"])
    assert (task.done, task.status) == (2, "done")
    rejected = decide(client, body["id"], verdict="rejected", comment="The answer ignores the question.")
    assert rejected.status_code == 201 and rejected.json()["comment"] == "The answer ignores the question."
    task.refresh_from_db()
    assert (task.done, task.status) == (1, "open")
    annotation = Annotation.objects.get(pk=body["annotation"]["id"])
    assert annotation.review_state == "rejected"
    admin = client_for(reviewed["admin"])
    assert annotation.text not in [row["messages"][-1]["content"] for row in export(admin, project, "sft")]
    assert annotation.pk not in [row["annotation_id"] for row in export(admin, project, "raw")]
    # The labelers who did it cannot take it again; of two newcomers, one gets the slot.
    for who in (reviewed["alice"], reviewed["bob"]):
        assert services.task_claim_next(project=project, labeler=who) is None
    first, second = member(project), member(project)
    assert services.task_claim_next(project=project, labeler=first).pk == task.pk
    assert services.task_claim_next(project=project, labeler=second) is None
    label_again = services.annotation_submit(task=task, labeler=first, client_id=uuid.uuid4(), data={"text": "Better."})
    assert label_again[1]
    task.refresh_from_db()
    assert (task.done, task.status) == (2, "done")
    assert task.done == task.annotations.filter(ANNOTATION_COUNTS).exclude(kind="skip").count()


def test_a_corrected_demonstration_counts_as_the_reviewers_in_place_of_the_original(reviewed, client_for):
    project, reviewer = reviewed["project"], reviewed["reviewer"]
    client = client_for(reviewer)
    body = claim(client, project).json()
    assert body["task"]["kind"] == "demonstration"
    same = decide(client, body["id"], verdict="corrected", correction={"text": "  " + body["annotation"]["text"] + " "})
    assert same.status_code == 400 and "accept it instead" in same.json()["detail"]
    fixed = decide(client, body["id"], verdict="corrected", correction={"text": "Paris."}, comment="Be brief.")
    assert fixed.status_code == 201, fixed.content
    item = ReviewItem.objects.get(pk=body["id"])
    correction = item.correction
    assert correction.labeler == reviewer and correction.text == "Paris." and correction.response.author == reviewer
    assert item.annotation.review_state == "corrected" and fixed.json()["correction"] == correction.pk
    task = Task.objects.get(pk=body["task"]["id"])
    assert task.done == 2 and task.status == "done"
    texts = [row["messages"][-1]["content"] for row in export(client_for(reviewed["admin"]), project, "sft")]
    assert "Paris." in texts and body["annotation"]["text"] not in texts


def test_a_corrected_comparison_changes_the_preference_export(reviewed, client_for):
    project, pair = reviewed["project"], reviewed["pair"]
    client = client_for(reviewed["reviewer"])
    while (body := claim(client, project).json())["task"]["id"] != pair.pk:
        decide(client, body["id"], verdict="accepted")
    left, right = body["task"]["responses"][0]["id"], body["task"]["responses"][1]["id"]
    no_strength = decide(client, body["id"], verdict="corrected", correction={"ranking": [[right], [left]]})
    assert no_strength.status_code == 400 and no_strength.json()["field"] == "correction.strength"
    fixed = decide(client, body["id"], verdict="corrected",
                   correction={"ranking": [[right], [left]], "strength": "much_better"})
    assert fixed.status_code == 201, fixed.content
    pairs = [(row["chosen"][0]["content"], row["rejected"][0]["content"], row["margin"])
             for row in export(client_for(reviewed["admin"]), project, "preference")]
    # bob's original (left over right) still counts; alice's is replaced by the reviewer's.
    assert sorted(pairs) == [("Left answer.", "Right answer.", 0.5), ("Right answer.", "Left answer.", 1.0)]


def test_the_labeler_reads_the_comment_in_the_api_and_on_the_work_page(reviewed, client, client_for):
    project, alice = reviewed["project"], reviewed["alice"]
    reviewer = client_for(reviewed["reviewer"])
    body = claim(reviewer, project).json()
    assert decide(reviewer, body["id"], verdict="rejected", comment="Cite a <source>.").status_code == 201
    mine = client_for(alice).get(f"/api/projects/{project.pk}/reviews/mine/").json()
    assert mine["count"] == 1
    entry = mine["results"][0]
    assert (entry["verdict"], entry["comment"], entry["task"]) == ("rejected", "Cite a <source>.", body["task"]["id"])
    assert entry["prompt"] and "reviewer" not in entry
    assert client_for(reviewed["bob"]).get(f"/api/projects/{project.pk}/reviews/mine/").json()["count"] == 0
    TaskFactory(project=project)  # so the work page shows a task
    client.force_login(alice)
    page = client.get(f"/projects/{project.pk}/label/demonstration/").content.decode()
    assert "Reviews of your work" in page and "Cite a &lt;source&gt;." in page and f"Task #{body['task']['id']}" in page


# Access --------------------------------------------------------------------------------------------------


def test_labelers_and_engineers_get_403_on_the_queue_and_outsiders_404(reviewed, client, client_for):
    project = reviewed["project"]
    item = ReviewItem.objects.first()
    outsider = member(ProjectFactory(), Membership.Role.ADMIN)
    for role, code in [(Membership.Role.LABELER, 403), (Membership.Role.ENGINEER, 403), (None, 404)]:
        user = member(project, role) if role else outsider
        api = client_for(user)
        assert claim(api, project).status_code == code, role
        assert decide(api, item.pk, verdict="accepted").status_code == code, role
        client.force_login(user)
        assert client.get(f"/projects/{project.pk}/review/").status_code == code, role
    assert decide(client_for(reviewed["reviewer"]), 10**15, verdict="accepted").status_code == 404
    assert ReviewItem.objects.filter(status="decided").count() == 0


# Settings and dashboard -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value, code", [(0.3, 200), (0, 200), (1, 200), (1.5, 400), (-0.1, 400), ("x", 400),
                                         (None, 400), ("NaN", 400)])
def test_the_review_rate_is_set_within_its_bounds(client_for, value, code):
    project = ProjectFactory()
    admin = member(project, Membership.Role.ADMIN)
    response = client_for(admin).patch(f"/api/projects/{project.pk}/", {"review_rate": value}, format="json")
    assert response.status_code == code, response.content
    project.refresh_from_db()
    assert project.review_rate == (float(value) if code == 200 else 0.0)
    if code == 200:
        assert response.json()["review_rate"] == float(value)
    else:
        assert "review_rate" in response.json()


def test_the_settings_page_sets_the_review_rate(client):
    project = ProjectFactory()
    client.force_login(member(project, Membership.Role.ADMIN))
    form = {"name": project.name, "guidelines": "", "overlap": 1, "lease_seconds": 600}
    assert 'name="review_rate"' in client.get(f"/projects/{project.pk}/settings/").content.decode()
    assert client.post(f"/projects/{project.pk}/settings/", {**form, "review_rate": "2"}).status_code == 400
    assert client.post(f"/projects/{project.pk}/settings/", {**form, "review_rate": "0.2"}).status_code == 302
    project.refresh_from_db()
    assert project.review_rate == 0.2


def test_the_dashboard_counts_reviews_per_labeler_and_leaves_rejected_work_out(reviewed, client, client_for):
    project = reviewed["project"]
    api = client_for(reviewed["reviewer"])
    verdicts = [("accepted", {}), ("rejected", {"comment": "Wrong."}), ("corrected", None),
                ("rejected", {"comment": "No."})]
    for verdict, extra in verdicts:
        body = claim(api, project).json()
        if extra is None:
            assert body["task"]["kind"] == "demonstration"
            extra = {"correction": {"text": "Fixed."}}
        assert decide(api, body["id"], verdict=verdict, **extra).status_code == 201
    data = dashboard.dashboard_get(project=project)
    rows = {row["username"]: row for row in data["reviews"]["labelers"]}
    # After correcting alice's second demonstration rita has annotated that task, so bob's work on it
    # goes to another reviewer: her fourth verdict fell on alice's comparison.
    assert rows["alice"] == {"labeler_id": reviewed["alice"].pk, "username": "alice", "reviewed": 3, "accepted": 1,
                             "rejected": 1, "corrected": 1, "waiting": 0}
    assert (rows["bob"]["reviewed"], rows["bob"]["rejected"], rows["bob"]["waiting"]) == (1, 1, 2)
    assert data["reviews"]["totals"] == {"reviewed": 4, "accepted": 1, "rejected": 2, "corrected": 1, "waiting": 2}
    labelers = {row["username"]: row["annotations"] for row in data["labelers"]}
    assert labelers == {"alice": 1, "bob": 2, "rita": 1}, "rejected and corrected work is out; the correction counts"
    assert data["progress"]["annotations"] == 4
    client.force_login(reviewed["admin"])
    page = client.get(f"/projects/{project.pk}/dashboard/").content.decode()
    assert 'id="review-table"' in page and 'data-labeler="bob"' in page


def test_django_admin_lists_the_queue_read_only(reviewed, client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    item = ReviewItem.objects.first()
    listing = client.get("/admin/annotation/reviewitem/")
    assert listing.status_code == 200 and "too fast" in listing.content.decode()
    assert client.get(f"/admin/annotation/reviewitem/{item.pk}/change/").status_code == 200
    assert client.get("/admin/annotation/reviewitem/add/").status_code == 403


def test_a_ranking_stored_as_bare_ids_is_shown_and_judged_as_groups(client, client_for):
    project = ProjectFactory()
    labeler, reviewer = member(project), member(project, Membership.Role.REVIEWER)
    task = comparison_task(project=project, texts=("One.", "Two."))
    first, second = task.task_responses.order_by("position").values_list("response_id", flat=True)
    old = Annotation.objects.create(task=task, labeler=labeler, kind="comparison", ranking=[second, first],
                                    strength="better")
    review_items_enqueue(annotation_ids=[old.pk], reason="legacy")
    client.force_login(reviewer)
    page = client.get(f"/projects/{project.pk}/review/")
    assert page.status_code == 200 and "Response 2 &gt; Response 1" in page.content.decode()
    api = client_for(reviewer)
    body = claim(api, project).json()
    assert body["annotation"]["ranking"] == [[second], [first]]
    same = decide(api, body["id"], verdict="corrected",
                  correction={"ranking": [[second], [first]], "strength": "better"})
    assert same.status_code == 400 and same.json()["field"] == "correction"
