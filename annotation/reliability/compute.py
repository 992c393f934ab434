"""One quality run over a project: read the judgments, estimate, flag, and build the report.

The report is a plain JSON-able dict (store.py caches it; the API's QualitySerializer documents
it). Labelers are named by id and username, as on the rest of the dashboard.
"""

import time
from collections.abc import Mapping

import numpy as np
from django.contrib.auth import get_user_model
from django.utils import timezone

from . import agreement, alpha, competence, flags
from .config import REPORT_VERSION, QualityConfig, quality_config
from .judgments import NO_VALUE, JudgmentTable, judgments_read
from annotation.reviews.sampling import review_items_enqueue


def known_rankings_for(*, project_id: int) -> dict[int, list]:
    """Known rankings (response ids, best first) by task id: the answers of the project's gold tasks.

    The crowd models anchor on these (competence.py): Dawid-Skene holds a gold task's label fixed,
    so a labeler's competence reflects their gold answers as well as their agreement with others.
    """
    from annotation.models import Task

    rows = Task.objects.filter(project_id=project_id, kind=Task.Kind.COMPARISON, is_gold=True).values_list("id", "gold")
    return {task_id: gold["ranking"] for task_id, gold in rows.iterator(chunk_size=2000)
            if isinstance(gold, dict) and gold.get("ranking")}


def _sorted_codes(table: JudgmentTable) -> tuple[np.ndarray, list[str]]:
    """The choice column recoded so that code order is label order ("1" < "1=2" < "2" ...), and those labels."""
    column = table.array("choice")
    ordered = sorted(table.choices)
    coded = np.full(len(column), NO_VALUE, dtype=np.int64)
    present = column != NO_VALUE
    if ordered:
        recode = np.array([ordered.index(label) for label in table.choices], dtype=np.int64)
        coded[present] = recode[column[present]]
    return coded, ordered


def _gold_counts(table: JudgmentTable, *, tasks, labelers, choices) -> dict[int, tuple[int, int]]:
    """{labeler: (judgments of tasks with a known answer, how many chose it)}."""
    counts: dict[int, tuple[int, int]] = {}
    for task, labeler, choice in zip(tasks, labelers, choices):
        known = table.known.get(int(task))
        if known is not None:
            n, correct = counts.get(int(labeler), (0, 0))
            counts[int(labeler)] = (n + 1, correct + int(choice == known))
    return counts


def _labeler_rows(*, labelers, estimate, gold, found: list, outlier_evidence: list[dict]) -> list[dict]:
    """One row per labeler who judged or was flagged, most judgments first."""
    judged = {int(k): int(v) for k, v in zip(*np.unique(labelers, return_counts=True))}
    by_labeler: dict[int, list] = {}
    for flag in found:
        by_labeler.setdefault(flag.labeler_id, []).append(flag.as_dict())
    evidence = {row["labeler_id"]: row for row in outlier_evidence}
    ids = sorted(set(judged) | set(by_labeler))
    names = dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username"))
    rows = []
    for labeler in ids:
        n, correct = gold.get(labeler, (0, 0))
        outlier = evidence.get(labeler, {})
        rows.append({
            "labeler_id": labeler,
            "username": names.get(labeler, f"#{labeler}"),
            "judgments": judged.get(labeler, 0),
            "dawid_skene": estimate.dawid_skene.get(labeler),
            "mace": estimate.mace.get(labeler),
            "gold_judgments": n,
            "gold_agreeing": correct,
            "disagreement": outlier.get("disagreement"),
            "expected_disagreement": outlier.get("expected"),
            "flags": by_labeler.get(labeler, []),
        })
    rows.sort(key=lambda row: (-row["judgments"], row["username"]))
    return rows


def quality_compute(
    *, project_id: int, known_rankings: Mapping[int, list] | None = None, config: QualityConfig | None = None
) -> dict:
    """Compute the project's quality report and write its flags. Memory is bounded by config.max_judgments."""
    config = config or quality_config()
    started, data_as_of = time.monotonic(), timezone.now()
    if known_rankings is None:
        known_rankings = known_rankings_for(project_id=project_id)
    table = judgments_read(
        project_id=project_id, max_judgments=config.max_judgments, chunk_tasks=config.chunk_tasks,
        known_rankings=known_rankings,
    )
    choice_codes, choice_labels = _sorted_codes(table)
    labeled = choice_codes != NO_VALUE
    annotations, tasks, labelers = table.array("annotation"), table.array("task"), table.array("labeler")
    choices = np.array(choice_labels, dtype=object)[choice_codes[labeled]] if labeled.any() else np.array([], dtype=object)

    estimate = competence.competence_estimate(
        tasks=tasks[labeled], labelers=labelers[labeled], choices=choices, known=table.known
    )
    pairs = agreement.judgment_pairs(
        annotations=annotations[labeled], tasks=tasks[labeled], labelers=labelers[labeled], choices=choices
    )
    pair_rows = agreement.pair_agreement(pairs)
    alphas = alpha.alphas(table, choice_codes=choice_codes)

    medians = flags.time_medians(project_id=project_id)
    thresholds, fast = flags.fast_flags(project_id=project_id, config=config, medians=medians)
    position_tested, biased = flags.position_tests(
        annotations=annotations, labelers=labelers, shown=table.array("shown"),
        top_position=table.array("top_position"), config=config,
    )
    outlier_tested, outliers, outlier_evidence = flags.outlier_tests(pairs=pairs, config=config)
    flags.flags_write(project_id=project_id, flags=biased + outliers)
    # Every flagged annotation is reviewed: the queue takes each once (review_items_enqueue is idempotent).
    flags.annotation_flags_hand_over(
        project_id=project_id,
        hand_over=lambda ids: review_items_enqueue(annotation_ids=ids, reason="flagged by the quality check"),
    )

    labeler_rows = _labeler_rows(
        labelers=labelers,
        estimate=estimate,
        gold=_gold_counts(table, tasks=tasks[labeled], labelers=labelers[labeled], choices=choices),
        found=fast + biased + outliers,
        outlier_evidence=outlier_evidence,
    )
    return {
        "version": REPORT_VERSION,
        "project_id": project_id,
        "data_as_of": data_as_of.isoformat(),  # work created after this is not in the report
        "computed_at": timezone.now().isoformat(),
        "seconds": round(time.monotonic() - started, 3),
        "judgments": len(table),
        "tasks": table.tasks,
        "truncated": table.truncated,
        "max_judgments": config.max_judgments,
        "choice_labels": choice_labels,
        "models": {"items": estimate.items, "judgments": estimate.judgments, "known_tasks": len(table.known)},
        "labelers": labeler_rows,
        "alpha": [row.as_dict() for row in alphas],
        "pairs": [row.as_dict() for row in pair_rows],
        "times": [
            {"kind": kind, "timed": stats["timed"], "median_ms": round(stats["median_ms"]),
             "fast_below_ms": round(thresholds[kind]) if kind in thresholds else None}
            for kind, stats in sorted(medians.items())
        ],
        "tests": {"position_tested": position_tested, "outlier_tested": outlier_tested},
        "flag_counts": flags.flag_counts(project_id=project_id),
    }
