"""Dynamic overlap: a comparison whose labels disagree gets one more label, up to the project's maximum."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation import overlap, services
from annotation.models import Annotation, Lease, Membership, Task
from annotation.reviews.sampling import review_items_enqueue
from tests.factories import ProjectFactory, TaskFactory, comparison_task, gold_comparison_task, member

pytestmark = pytest.mark.django_db


def judge(project, labeler, *, best: int):
    """Claim the labeler's next task and rank the shown response at position `best` first."""
    task = services.task_claim_next(project=project, labeler=labeler)
    assert task is not None, f"{labeler} found no task"
    shown = list(task.task_responses.order_by("position").values_list("response_id", flat=True))
    order = [shown[best]] + [rid for i, rid in enumerate(shown) if i != best]
    data = {"ranking": [[rid] for rid in order], "strength": "better"}
    annotation, created = services.annotation_submit(task=task, labeler=labeler, client_id=uuid.uuid4(), data=data)
    assert created
    return annotation


def dynamic_project(**fields):
    values = {"overlap": 2, "dynamic_overlap": True, "max_overlap": 3, "agreement_threshold": 0.6, **fields}
    return ProjectFactory(**values)


# The rule -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("tops, share", [
    ([[1], [1]], 1.0),
    ([[1], [2]], 0.5),
    ([[1], [1], [2]], 2 / 3),
    ([[1], [2], [3]], 1 / 3),
    ([[1, 2], [1]], 0.5),  # a tie at the top agrees only with the same tie
    ([[2, 1], [1, 2]], 1.0),
    ([[], [1]], 0.5),  # an "all bad" judgement without a ranking is an answer of its own
    ([[1]], None),
])
def test_majority_share_is_the_share_of_the_most_common_best_response(tops, share):
    rankings = [[top, [9]] if top else [] for top in tops]
    assert overlap.majority_share(rankings) == (pytest.approx(share) if share is not None else None)


def test_a_threshold_equal_to_the_share_is_met():
    rankings = [[[1]], [[1]], [[2]]]
    assert not overlap.needs_another_label(rankings=rankings, threshold=2 / 3)
    assert overlap.needs_another_label(rankings=rankings, threshold=0.7)
    assert overlap.grown_required(done=3, required=3, max_overlap=3) is None
    assert overlap.grown_required(done=2, required=2, max_overlap=3) == 3


# The submit ---------------------------------------------------------------------------------------


def test_off_by_default_disagreement_finishes_the_task():
    project = ProjectFactory(overlap=2)
    assert (project.dynamic_overlap, project.max_overlap, project.agreement_threshold) == (False, 3, 0.6)
    task = comparison_task(project=project)
    judge(project, member(project), best=0)
    judge(project, member(project), best=1)
    task.refresh_from_db()
    assert (task.done, task.required, task.status) == (2, 2, "done")
    assert services.task_claim_next(project=project, labeler=member(project)) is None


def test_disagreement_adds_exactly_one_slot_for_a_labeler_who_has_not_judged_it():
    project = dynamic_project()
    task = comparison_task(project=project)
    alice, bob = member(project), member(project)
    judge(project, alice, best=0)
    task.refresh_from_db()
    assert (task.done, task.required, task.status) == (1, 2, "open")
    judge(project, bob, best=1)
    task.refresh_from_db()
    assert (task.done, task.required, task.status) == (2, 3, "open")
    # Alice and Bob have judged it: it is not theirs again. Of two newcomers, exactly one gets the slot.
    assert services.task_claim_next(project=project, labeler=alice) is None
    assert services.task_claim_next(project=project, labeler=bob) is None
    carol, dave = member(project), member(project)
    assert services.task_claim_next(project=project, labeler=carol).pk == task.pk
    assert services.task_claim_next(project=project, labeler=dave) is None
    judge(project, carol, best=0)  # 2 of 3 pick the first: 0.67 meets 0.6
    task.refresh_from_db()
    assert (task.done, task.required, task.status) == (3, 3, "done")


def test_undoing_the_label_that_grew_a_task_takes_the_growth_back_and_the_new_answer_decides_again():
    from annotation.undo import annotation_undo

    project = dynamic_project()
    task = comparison_task(project=project)
    alice, bob = member(project), member(project)
    judge(project, alice, best=0)
    grown_by = judge(project, bob, best=1)  # 1 of 2 agree: the task grows to 3
    task.refresh_from_db()
    assert (task.done, task.required) == (2, 3)
    annotation_undo(annotation_id=grown_by.pk, labeler=bob)
    task.refresh_from_db()
    assert (task.done, task.required, task.status) == (1, 2, "open")  # the growth went with Bob's label
    assert services.task_claim_next(project=project, labeler=member(project)) is None  # Bob holds the slot
    judge(project, bob, best=0)  # Bob changes his mind: the two agree, so the task is done at 2
    task.refresh_from_db()
    assert (task.done, task.required, task.status) == (2, 2, "done")


def test_undoing_a_label_that_did_not_grow_the_task_keeps_its_size():
    from annotation.undo import annotation_undo

    project = dynamic_project()
    task = comparison_task(project=project)
    judge(project, member(project), best=0)
    judge(project, member(project), best=1)  # grows to 3
    carol = member(project)
    third = judge(project, carol, best=1)  # 2 of 3 agree: done at 3
    task.refresh_from_db()
    assert (task.done, task.required, task.status) == (3, 3, "done")
    annotation_undo(annotation_id=third.pk, labeler=carol)
    task.refresh_from_db()
    assert (task.done, task.required, task.status) == (2, 3, "open")  # the growth was not Carol's to take back


def test_agreement_adds_no_slot():
    project = dynamic_project()
    task = comparison_task(project=project)
    judge(project, member(project), best=1)
    judge(project, member(project), best=1)
    task.refresh_from_db()
    assert (task.done, task.required, task.status) == (2, 2, "done")


def test_never_beyond_max_overlap():
    project = dynamic_project(max_overlap=4, agreement_threshold=0.9)
    task = comparison_task(project=project, texts=("A.", "B.", "C.", "D."))
    for best in range(4):  # four labels, four different best responses
        judge(project, member(project), best=best)
    task.refresh_from_db()
    assert (task.done, task.required, task.status) == (4, 4, "done")
    assert services.task_claim_next(project=project, labeler=member(project)) is None


def test_demonstrations_and_gold_tasks_never_grow():
    project = dynamic_project(agreement_threshold=1.0)
    demo = TaskFactory(project=project)
    gold = gold_comparison_task(project=project)
    for _ in range(2):
        labeler = member(project)
        task = services.task_claim_next(project=project, labeler=labeler)
        assert task.pk == demo.pk
        services.annotation_submit(task=task, labeler=labeler, client_id=uuid.uuid4(), data={"text": "An answer."})
    right, wrong = gold.task_responses.order_by("position").values_list("response_id", flat=True)
    for ranking in ([[right], [wrong]], [[wrong], [right]]):
        labeler = member(project)
        # The gold draw serves gold tasks at the project's rate; lease this one directly.
        Lease.objects.create(task=gold, labeler=labeler, project=project, expires_at=timezone.now() + timedelta(minutes=5))
        services.annotation_submit(task=gold, labeler=labeler, client_id=uuid.uuid4(),
                                   data={"ranking": ranking, "strength": "better"})
    demo.refresh_from_db()
    gold.refresh_from_db()
    assert (demo.done, demo.required, demo.status) == (2, 2, "done")
    assert (gold.done, gold.required, gold.status) == (2, 2, "open")  # a gold task is never done nor grown


def test_a_rejection_still_reopens_one_slot_and_the_refill_is_judged_again():
    project = dynamic_project()
    reviewer = member(project, Membership.Role.REVIEWER)
    task = comparison_task(project=project)
    alice, bob = member(project), member(project)
    first = judge(project, alice, best=0)
    judge(project, bob, best=0)
    task.refresh_from_db()
    assert (task.done, task.required, task.status) == (2, 2, "done")
    review_items_enqueue(annotation_ids=[first.pk], reason="sample")
    from annotation.reviews.services import review_claim_next, review_decide

    item = review_claim_next(project=project, reviewer=reviewer)
    review_decide(item_id=item.pk, reviewer=reviewer, client_id=uuid.uuid4(), verdict="rejected", comment="No.")
    task.refresh_from_db()
    assert (task.done, task.required, task.status) == (1, 2, "open")
    # The refill disagrees with the one label that still counts (the rejected one does not): one more slot.
    judge(project, member(project), best=1)
    task.refresh_from_db()
    assert (task.done, task.required, task.status) == (2, 3, "open")
    judge(project, member(project), best=1)
    task.refresh_from_db()
    assert (task.done, task.required, task.status) == (3, 3, "done")
    assert task.done == task.annotations.exclude(review_state="rejected").count()


def test_progress_counts_a_grown_task_as_open_until_it_has_its_labels(client_for):
    project = dynamic_project()
    admin = member(project, Membership.Role.ADMIN)
    comparison_task(project=project)
    judge(project, member(project), best=0)
    judge(project, member(project), best=1)
    from annotation.dashboard import dashboard_progress

    row = dashboard_progress(project=project)["kinds"][0]
    assert (row["tasks"], row["done_tasks"], row["annotations"], row["required"]) == (1, 0, 2, 3)
    assert client_for(admin).get(f"/api/projects/{project.pk}/").status_code == 200


# Settings -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("body, field", [
    ({"dynamic_overlap": True, "max_overlap": 1}, "max_overlap"),  # below the overlap (2)
    ({"max_overlap": 21}, "max_overlap"),
    ({"max_overlap": 0}, "max_overlap"),
    ({"agreement_threshold": 0.4}, "agreement_threshold"),
    ({"agreement_threshold": 1.01}, "agreement_threshold"),
    ({"agreement_threshold": "x"}, "agreement_threshold"),
    ({"dynamic_overlap": "perhaps"}, "dynamic_overlap"),
])
def test_bad_settings_name_the_field_and_change_nothing(client_for, body, field):
    project = ProjectFactory(overlap=2)
    admin = member(project, Membership.Role.ADMIN)
    response = client_for(admin).patch(f"/api/projects/{project.pk}/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in str(response.json())
    project.refresh_from_db()
    assert (project.dynamic_overlap, project.max_overlap, project.agreement_threshold) == (False, 3, 0.6)


def test_raising_the_overlap_past_the_maximum_with_dynamic_overlap_on_names_overlap(client_for):
    project = dynamic_project()
    admin = member(project, Membership.Role.ADMIN)
    response = client_for(admin).patch(f"/api/projects/{project.pk}/", {"overlap": 5}, format="json")
    assert response.status_code == 400 and response.json()["field"] == "overlap"
    ok = client_for(admin).patch(f"/api/projects/{project.pk}/", {"overlap": 5, "max_overlap": 6}, format="json")
    assert ok.status_code == 200, ok.content
    assert (ok.json()["overlap"], ok.json()["max_overlap"], ok.json()["dynamic_overlap"]) == (5, 6, True)


def test_labelers_cannot_change_the_settings(client_for):
    project = ProjectFactory()
    labeler = member(project)
    response = client_for(labeler).patch(f"/api/projects/{project.pk}/", {"dynamic_overlap": True}, format="json")
    assert response.status_code == 403
    project.refresh_from_db()
    assert not project.dynamic_overlap


def test_lowering_the_maximum_finishes_grown_tasks_that_have_their_labels():
    project = dynamic_project(max_overlap=5, agreement_threshold=1.0)
    task = comparison_task(project=project, texts=("A.", "B.", "C."))
    for best in range(3):
        judge(project, member(project), best=best)
    task.refresh_from_db()
    assert (task.done, task.required, task.status) == (3, 4, "open")
    services.project_update(project=project, max_overlap=3)
    task.refresh_from_db()
    assert (task.done, task.required, task.status) == (3, 3, "done")


def test_saving_the_settings_with_the_same_overlap_keeps_a_grown_task_open(client):
    project = dynamic_project()
    client.force_login(member(project, Membership.Role.ADMIN))
    task = comparison_task(project=project)
    judge(project, member(project), best=0)
    judge(project, member(project), best=1)
    form = {"name": project.name, "guidelines": "", "overlap": 2, "lease_seconds": 600, "dynamic_overlap": "on",
            "max_overlap": "3", "agreement_threshold": "0.6", "review_rate": "0.1"}
    assert client.post(f"/projects/{project.pk}/settings/", form).status_code == 302
    task.refresh_from_db()
    assert (task.done, task.required, task.status) == (2, 3, "open")
    # A new overlap does apply to open tasks, grown ones included.
    assert client.post(f"/projects/{project.pk}/settings/", {**form, "overlap": 3}).status_code == 302
    task.refresh_from_db()
    assert (task.required, task.status) == (3, "open")
    assert client.post(f"/projects/{project.pk}/settings/", {**form, "overlap": 1}).status_code == 302
    task.refresh_from_db()
    assert (task.required, task.status) == (1, "done")


def test_the_settings_page_sets_dynamic_overlap(client):
    project = ProjectFactory(overlap=2)
    client.force_login(member(project, Membership.Role.ADMIN))
    page = client.get(f"/projects/{project.pk}/settings/").content.decode()
    assert 'name="dynamic_overlap"' in page and 'name="max_overlap"' in page and 'name="agreement_threshold"' in page
    form = {"name": project.name, "guidelines": "", "overlap": 2, "lease_seconds": 600}
    bad = client.post(f"/projects/{project.pk}/settings/", {**form, "dynamic_overlap": "on", "max_overlap": "1"})
    assert bad.status_code == 400 and "must be at least the overlap" in bad.content.decode()
    good = {**form, "dynamic_overlap": "on", "max_overlap": "4", "agreement_threshold": "0.75"}
    assert client.post(f"/projects/{project.pk}/settings/", good).status_code == 302
    project.refresh_from_db()
    assert (project.dynamic_overlap, project.max_overlap, project.agreement_threshold) == (True, 4, 0.75)
    assert Annotation.objects.count() == 0 and Task.objects.count() == 0


def test_dynamic_overlap_costs_one_indexed_statement_on_the_submit_that_fills_a_task_and_none_on_others():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from annotation.selectors import task_get_for_member

    def submits(project) -> list[int]:
        """Statements run by each of the two submits that fill a fresh comparison task, loaded as the API does."""
        comparison_task(project=project)
        counts = []
        for best in (0, 1):
            labeler = member(project)
            claimed = services.task_claim_next(project=project, labeler=labeler)
            task = task_get_for_member(user=labeler, task_id=claimed.pk)
            shown = list(task.task_responses.order_by("position").values_list("response_id", flat=True))
            data = {"ranking": [[shown[best]], [shown[1 - best]]], "strength": "better"}
            with CaptureQueriesContext(connection) as captured:
                services.annotation_submit(task=task, labeler=labeler, client_id=uuid.uuid4(), data=data)
            counts.append(len(captured))
        return counts

    submits(dynamic_project())  # the connection prepares its statements once (annotation.sql.run.execute)
    off, on = submits(ProjectFactory(overlap=2)), submits(dynamic_project())
    assert on[0] == off[0], "a submit that does not fill the task reads nothing more"
    assert on[1] == off[1] + 1, "the filling submit reads the task's rankings once"


def test_the_database_and_django_admins_validation_refuse_a_maximum_below_the_overlap():
    from django.core.exceptions import ValidationError
    from django.db import IntegrityError, transaction

    project = ProjectFactory(overlap=3)
    project.dynamic_overlap, project.max_overlap = True, 2
    with pytest.raises(ValidationError, match="max_overlap must be at least the overlap"):
        project.full_clean()  # what Django admin's form runs before it saves
    with pytest.raises(IntegrityError), transaction.atomic():
        project.save()
    project.dynamic_overlap = False  # off, the maximum does not matter
    project.full_clean()
