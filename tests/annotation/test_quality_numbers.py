"""The quality report's numbers are exactly the libraries' on a fixed table.

The table goes into the database through claim, submit and skip; the pipeline reads it back
(annotation.reliability.compute). The same table, written by hand as the libraries' inputs, goes to
krippendorff and crowd-kit directly. Every number must be equal, not merely close.
"""

import warnings

import krippendorff
import numpy as np
import pandas as pd
import pytest
from crowdkit.aggregation import MACE, DawidSkene

from annotation.reliability import labels
from annotation.reliability.compute import quality_compute
from annotation.reliability.config import QualityConfig
from tests.annotation.quality_data import (
    choice_of,
    project_delete_with_members,
    table_project,
)

pytestmark = pytest.mark.django_db

# Five labelers, ten pair comparisons. Entries: signed preference (+ = first shown better,
# 0 = tie), "X" = all bad without a ranking, None = skipped.
TABLE = {
    "ann": [2, 2, -1, 3, -2, 0, 1, -3, 2, 1],
    "ben": [2, 1, -2, 3, -2, 0, 2, -3, 1, None],
    "cid": [1, 2, -1, 2, -1, 1, 1, -2, "X", 2],
    "dee": [-1, 2, -1, 3, None, 0, -1, -3, 2, 1],
    "eve": [3, -2, 2, -1, 2, -3, 1, 2, -2, -1],
}
NAMES = list(TABLE)
CHOICES = ["1", "1=2", "2"]  # the choice labels in the report's (sorted) order


@pytest.fixture(scope="module")
def fixed(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        project, tasks, users = table_project(TABLE)
    yield project, tasks, users
    with django_db_blocker.unblock():
        project_delete_with_members(project)


def matrix(value) -> np.ndarray:
    """Labelers × tasks, by hand from TABLE; NaN where value(entry) is None."""
    return np.array([[np.nan if (v := value(e)) is None else v for e in TABLE[name]] for name in NAMES], dtype=float)


def crowd_frame() -> pd.DataFrame:
    """The crowd models' input by hand: (task, worker, label) rows, sorted by task then worker."""
    rows = [
        (task, worker, choice_of(TABLE[name][task]))
        for task in range(10)
        for worker, name in enumerate(NAMES)
        if choice_of(TABLE[name][task]) is not None
    ]
    return pd.DataFrame(rows, columns=["task", "worker", "label"])


def competence(model) -> dict:
    return {
        NAMES[w]: sum(model.priors_[c] * model.errors_.loc[(w, c), c] for c in model.priors_.index
                      if (w, c) in model.errors_.index)
        for w in range(len(NAMES))
    }


def by_name(report, field):
    return {row["username"]: row[field] for row in report["labelers"]}


def test_alpha_per_kind_is_exactly_krippendorffs(fixed):
    project, _, _ = fixed
    report = quality_compute(project_id=project.pk)
    alphas = {row["kind"]: row for row in report["alpha"]}
    assert report["choice_labels"] == CHOICES
    choice = matrix(lambda e: None if choice_of(e) is None else CHOICES.index(choice_of(e)))
    preference = matrix(lambda e: None if e in (None, "X") else e)
    all_bad = matrix(lambda e: None if e is None else int(e == "X"))
    assert alphas["choice"]["level"] == "nominal"
    assert alphas["choice"]["alpha"] == krippendorff.alpha(reliability_data=choice, level_of_measurement="nominal")
    assert alphas["preference"]["level"] == "ordinal"
    assert alphas["preference"]["alpha"] == krippendorff.alpha(reliability_data=preference, level_of_measurement="ordinal")
    assert alphas["all_bad"]["alpha"] == krippendorff.alpha(reliability_data=all_bad, level_of_measurement="nominal")
    assert alphas["choice"]["units"] == 10 and alphas["choice"]["values"] == 47
    # Nobody flagged a response: alpha is undefined, and says why.
    assert alphas["flag_harmful"]["alpha"] is None and "same value" in alphas["flag_harmful"]["note"]


def test_competence_is_exactly_dawid_skene_and_mace(fixed):
    project, _, _ = fixed
    report = quality_compute(project_id=project.pk)
    frame = crowd_frame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = DawidSkene(n_iter=100, tol=1e-5).fit(frame)
        mace = MACE(n_restarts=1, n_iter=50, random_state=0).fit(frame)
    assert by_name(report, "dawid_skene") == competence(ds)
    assert by_name(report, "mace") == {NAMES[w]: mace.spamming_[i, 1] for i, w in enumerate(pd.factorize(frame["worker"])[1])}
    assert report["models"] == {"items": 10, "judgments": 47, "known_tasks": 0}
    # The contrarian is the least competent by both models.
    assert min(report["labelers"], key=lambda r: r["dawid_skene"])["username"] == "eve"
    assert min(report["labelers"], key=lambda r: r["mace"])["username"] == "eve"


def test_known_answers_anchor_dawid_skene_exactly(fixed):
    project, tasks, _ = fixed
    shown = [list(t.task_responses.order_by("position").values_list("response_id", flat=True)) for t in tasks]
    # Gold: task 0's second response is better (only dee and eve said so); task 3's first is.
    known = {tasks[0].pk: [[shown[0][1]], [shown[0][0]]], tasks[3].pk: [[shown[3][0]], [shown[3][1]]]}
    report = quality_compute(project_id=project.pk, known_rankings=known)
    frame = crowd_frame()
    true_labels = pd.Series(["2", "1"], index=pd.Index([0, 3], name="task"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        anchored = DawidSkene(n_iter=100, tol=1e-5).fit(frame, true_labels=true_labels)
        plain = DawidSkene(n_iter=100, tol=1e-5).fit(frame)
    assert by_name(report, "dawid_skene") == competence(anchored)
    assert competence(anchored) != competence(plain)
    assert report["models"]["known_tasks"] == 2
    assert by_name(report, "gold_judgments") == {name: 2 for name in NAMES}
    assert by_name(report, "gold_agreeing") == {"ann": 1, "ben": 1, "cid": 1, "dee": 2, "eve": 0}


def test_pair_agreement_counts_shared_tasks_and_agreements(fixed):
    project, _, users = fixed
    report = quality_compute(project_id=project.pk)
    pairs = {(p["a"], p["b"]): p for p in report["pairs"]}
    ann, ben, cid = users["ann"].pk, users["ben"].pk, users["cid"].pk
    # ann and ben both judged tasks 0-8 (ben skipped 9) and chose alike on all nine.
    assert (pairs[(ann, ben)]["shared"], pairs[(ann, ben)]["agreeing"]) == (9, 9)
    # cid: all bad on task 8 (no choice), and a "first better" where ann tied on task 5.
    assert (pairs[(ann, cid)]["shared"], pairs[(ann, cid)]["agreeing"]) == (9, 8)
    assert pairs[(ann, cid)]["rate"] == 8 / 9


def test_labels_of_larger_rankings_and_flags():
    positions = {11: 0, 12: 1, 13: 2}
    assert labels.choice_label([[13], [11, 12]], positions) == "3"
    assert labels.choice_label([[12, 13], [11]], positions) == "2=3"
    assert labels.choice_label([], positions) is None
    assert labels.top_position([[12, 13], [11]], positions) == -1
    assert labels.top_position([[13], [11], [12]], positions) == 2
    assert labels.preference_scale([[13], [11], [12]], "better", positions) is None  # a scale only for pairs
    assert labels.preference_scale([[5], [4]], "much_better", {4: 0, 5: 1}) == -3
    bits = labels.flag_bits({"12": ["harmful"], "99": ["harmful"]}, positions)
    assert bits == 1 << (1 * 3 + labels.FLAG_KINDS.index("harmful"))


def test_reading_in_small_chunks_gives_the_same_numbers(fixed):
    project, _, _ = fixed
    whole = quality_compute(project_id=project.pk)
    chunked = quality_compute(project_id=project.pk, config=QualityConfig(chunk_tasks=3))
    for key in ("labelers", "alpha", "pairs", "judgments", "tasks"):
        assert chunked[key] == whole[key], key


def test_a_run_reads_at_most_max_judgments_of_the_newest_tasks(fixed):
    project, _, _ = fixed
    report = quality_compute(project_id=project.pk, config=QualityConfig(max_judgments=12, chunk_tasks=2))
    # Chunks of two tasks (about ten judgments) until twelve are read: the four newest tasks.
    assert report["truncated"] is True and report["tasks"] == 4
    assert report["judgments"] == sum(1 for name in NAMES for e in TABLE[name][6:] if e is not None)
    assert quality_compute(project_id=project.pk)["truncated"] is False


def test_a_run_that_may_read_nothing_reports_nothing(fixed):
    project, _, _ = fixed
    report = quality_compute(project_id=project.pk, config=QualityConfig(max_judgments=0))
    assert (report["judgments"], report["truncated"], report["labelers"], report["pairs"]) == (0, True, [], [])
    assert all(row["alpha"] is None for row in report["alpha"])


@pytest.mark.django_db
def test_rejected_and_corrected_judgments_do_not_count():
    from annotation.models import Annotation
    from annotation.reliability.judgments import judgments_read
    from tests.annotation.quality_data import bulk_project

    project, tasks, _ = bulk_project({"ann": [(i, 1, 20_000) for i in range(4)],
                                      "bob": [(i, -1, 20_000) for i in range(4)]}, n_tasks=4, overlap=2)
    before = len(judgments_read(project_id=project.pk, max_judgments=1000, chunk_tasks=50))
    Annotation.objects.filter(project=project, labeler__username="bob", task=tasks[0]).update(review_state="rejected")
    Annotation.objects.filter(project=project, labeler__username="bob", task=tasks[1]).update(review_state="corrected")
    assert (before, len(judgments_read(project_id=project.pk, max_judgments=1000, chunk_tasks=50))) == (8, 6)


@pytest.mark.django_db
def test_the_projects_gold_answers_are_the_known_labels():
    from annotation.reliability.compute import known_rankings_for
    from tests.factories import ProjectFactory, comparison_task, gold_comparison_task

    project = ProjectFactory()
    gold = gold_comparison_task(project=project, best=1)
    comparison_task(project=project)  # a real task: no known answer
    gold_comparison_task(project=ProjectFactory())  # another project's
    shown = list(gold.task_responses.order_by("position").values_list("response_id", flat=True))
    assert known_rankings_for(project_id=project.pk) == {gold.pk: [[shown[1]], [shown[0]]]}
