"""Flags on constructed labelers: a position-biased one, a fast one and a random one among careful ones."""

import random
from types import SimpleNamespace

import pytest

from annotation.models import AnnotationFlag
from annotation.reliability import flags
from annotation.reliability.compute import quality_compute
from tests.annotation.quality_data import bulk_project, project_delete_with_members

pytestmark = pytest.mark.django_db

N_TASKS = 80
CAREFUL = ["carol", "chen", "cleo", "cyra"]


def population(seed: int = 7) -> dict[str, list[tuple]]:
    """Every labeler judges every task. Careful ones are right 90% of the time and take 20-40 s."""
    rng = random.Random(seed)
    truth = [rng.choice([1, -1]) for _ in range(N_TASKS)]

    def careful(i):
        side = truth[i] if rng.random() < 0.9 else -truth[i]
        return side * rng.randint(1, 3)

    def steady():
        return rng.randint(20_000, 40_000)

    judgments = {name: [(i, careful(i), steady()) for i in range(N_TASKS)] for name in CAREFUL}
    judgments["fiona"] = [(i, careful(i), rng.randint(800, 2_500)) for i in range(N_TASKS)]  # right, but rushed
    judgments["pete"] = [(i, rng.randint(1, 3), steady()) for i in range(N_TASKS)]  # always the first shown
    judgments["rand"] = [(i, rng.choice([1, -1]) * rng.randint(1, 3), steady()) for i in range(N_TASKS)]
    return judgments


@pytest.fixture(scope="module")
def crowd(django_db_setup, django_db_blocker):
    """Computed once for the module; the tests only read it (the hand-over test, last, marks flags)."""
    with django_db_blocker.unblock():
        project, _, users = bulk_project(population(), n_tasks=N_TASKS, overlap=7)
        report = quality_compute(project_id=project.pk)
    rows = {row["username"]: row for row in report["labelers"]}
    yield SimpleNamespace(project=project, users=users, report=report, rows=rows)
    with django_db_blocker.unblock():
        project_delete_with_members(project)


def reasons(row) -> set[str]:
    return {flag["reason"] for flag in row["flags"]}


def flagged_annotations(project, user, reason) -> int:
    return AnnotationFlag.objects.filter(project=project, annotation__labeler=user, reason=reason).count()


def test_careful_labelers_are_not_flagged(crowd):
    for name in CAREFUL:
        assert reasons(crowd.rows[name]) == set(), (name, crowd.rows[name])
        assert not AnnotationFlag.objects.filter(annotation__labeler=crowd.users[name]).exists()


def test_the_position_biased_labeler_is_flagged_with_a_binomial_p_value(crowd):
    flag = next(f for f in crowd.rows["pete"]["flags"] if f["reason"] == "position_bias")
    assert flag["detail"]["first_picks"] == flag["detail"]["judgments"] == N_TASKS
    assert flag["detail"]["chance"] == 0.5
    assert flag["p_value"] == pytest.approx(0.5**N_TASKS)
    assert flagged_annotations(crowd.project, crowd.users["pete"], "position_bias") == N_TASKS
    assert "position_bias" not in reasons(crowd.rows["rand"])


def test_the_fast_labeler_is_flagged_per_annotation_and_as_a_habit(crowd):
    times = {row["kind"]: row for row in crowd.report["times"]}
    assert times["comparison"]["fast_below_ms"] == round(0.2 * times["comparison"]["median_ms"])
    habit = next(f for f in crowd.rows["fiona"]["flags"] if f["reason"] == "fast")
    assert habit["detail"]["share"] == 1.0 and habit["detail"]["timed"] == N_TASKS
    assert flagged_annotations(crowd.project, crowd.users["fiona"], "fast") == N_TASKS
    stored = AnnotationFlag.objects.filter(annotation__labeler=crowd.users["fiona"], reason="fast").first()
    assert stored.detail["time_spent_ms"] < stored.detail["threshold_ms"]
    assert reasons(crowd.rows["fiona"]) == {"fast"}  # right answers: no other flag


def test_the_random_labeler_is_an_outlier_with_a_p_value(crowd):
    flag = next(f for f in crowd.rows["rand"]["flags"] if f["reason"] == "outlier")
    assert flag["p_value"] < 0.01 / crowd.report["tests"]["outlier_tested"]
    assert flag["detail"]["disagreement"] > flag["detail"]["expected"] + 0.1
    assert flagged_annotations(crowd.project, crowd.users["rand"], "outlier") > 0
    # The crowd models agree: the random and the biased labeler are the least competent.
    by_ds = sorted(crowd.rows.values(), key=lambda r: r["dawid_skene"])
    assert {by_ds[0]["username"], by_ds[1]["username"]} == {"rand", "pete"}
    by_mace = sorted(crowd.rows.values(), key=lambda r: r["mace"])
    assert {by_mace[0]["username"], by_mace[1]["username"]} == {"rand", "pete"}


def test_a_second_run_adds_no_flags_and_counts_them(crowd):
    before = AnnotationFlag.objects.filter(project=crowd.project).count()
    again = quality_compute(project_id=crowd.project.pk)
    assert AnnotationFlag.objects.filter(project=crowd.project).count() == before
    assert sum(again["flag_counts"].values()) == before


def test_too_few_judgments_are_not_tested(crowd):
    assert crowd.report["tests"] == {"position_tested": 7, "outlier_tested": 7}
    small, _, _ = bulk_project({"a": [(i, 1, 1000) for i in range(5)], "b": [(i, -1, 1000) for i in range(5)]},
                               n_tasks=5, overlap=2)
    tiny = quality_compute(project_id=small.pk)
    assert tiny["tests"] == {"position_tested": 0, "outlier_tested": 0}
    assert not AnnotationFlag.objects.filter(project=small).exists()  # 10 timed annotations: no median yet


def test_every_flagged_annotation_is_in_the_review_queue_once(crowd):
    from annotation.models import ReviewItem

    flagged = set(AnnotationFlag.objects.filter(project=crowd.project).values_list("annotation_id", flat=True))
    queued = ReviewItem.objects.filter(project=crowd.project, annotation_id__in=flagged)
    assert flagged and queued.count() == len(flagged)  # quality_compute handed each over once
    assert set(queued.values_list("reason", flat=True)) == {"flagged by the quality check"}
    assert not AnnotationFlag.objects.filter(project=crowd.project, handed_over_at__isnull=True).exists()
    received = []
    assert flags.annotation_flags_hand_over(project_id=crowd.project.pk, hand_over=received.extend) == 0
    assert received == []


def test_hand_over_gives_each_pending_flag_once_in_batches(crowd):
    AnnotationFlag.objects.filter(project=crowd.project).update(handed_over_at=None)
    received = []
    handed = flags.annotation_flags_hand_over(project_id=crowd.project.pk, hand_over=received.extend, batch_size=25)
    flagged = set(AnnotationFlag.objects.filter(project=crowd.project).values_list("annotation_id", flat=True))
    assert sorted(received) == sorted(flagged) and handed == len(flagged)
    assert flags.annotation_flags_hand_over(project_id=crowd.project.pk, hand_over=received.extend) == 0
