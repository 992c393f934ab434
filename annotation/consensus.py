"""One preference pair per comparison task: the labelers' judgments aggregated by Dawid-Skene (crowd-kit).

Each judgment becomes the label of reliability/labels.py: the best response(s) as display
positions ("1", "2", "1=2" for a tie at the top), or "bad" when the labeler marked every response
bad. crowd-kit's DawidSkene is fitted on every judgment the export keeps, exactly as the quality
run fits it (reliability/competence.py: rows sorted by task and labeler, gold answers passed as
`true_labels`, so a gold task's posterior is pinned to its known answer). The task's consensus is
the label with the highest posterior (crowd-kit's `labels_`), and its confidence is that posterior.

- chosen: the response at the consensus position;
- rejected: for a pair, the other response. With three or more responses, a second Dawid-Skene
  over the last group of each ranking (its worst response(s)) gives the consensus worst;
- no pair when the consensus is a tie, "bad", or (K > 2) the worst is a tie or the best itself.

A task judged by one labeler gets a pair too: its posterior rests on that labeler's confusion
matrix, which agreement elsewhere and gold answers taught. All the project's kept judgments are
held in memory at once (a few integers each), as the fit needs them together.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from .models import ANNOTATION_COUNTS, Annotation, Project, Task, TaskResponse
from .reliability import competence, labels

ALL_BAD = "bad"
POSITION_CHUNK = 2000


@dataclass(frozen=True)
class ConsensusPair:
    task_id: int
    chosen_id: int
    rejected_id: int
    confidence: float  # the Dawid-Skene posterior of the consensus best, 0..1


def _label(ranking, all_bad: bool, positions: dict[int, int], *, worst: bool = False) -> str | None:
    if all_bad:
        return ALL_BAD
    if not ranking:
        return None
    return labels.choice_label(ranking[-1:] if worst else ranking, positions)


def _positions(task_ids: list[int]) -> dict[int, dict[int, int]]:
    """{task id: {response id: display position}}, read a chunk of tasks at a time."""
    result: dict[int, dict[int, int]] = {}
    for start in range(0, len(task_ids), POSITION_CHUNK):
        rows = TaskResponse.objects.filter(task_id__in=task_ids[start:start + POSITION_CHUNK]).values_list(
            "task_id", "response_id", "position"
        )
        for task_id, response_id, position in rows:
            result.setdefault(task_id, {})[response_id] = position
    return result


def _known(*, project: Project, positions: dict[int, dict[int, int]], worst: bool) -> dict[int, str]:
    """Gold answers of the judged tasks as labels (the best group, or the worst one)."""
    gold = Task.objects.filter(
        project=project, kind=Task.Kind.COMPARISON, is_gold=True, pk__in=list(positions)
    ).values_list("id", "gold")
    known = {}
    for task_id, answer in gold:
        ranking = answer.get("ranking") if isinstance(answer, dict) else None
        label = _label(ranking, False, positions[task_id], worst=worst) if ranking else None
        if label is not None:
            known[task_id] = label
    return known


def _aggregate(rows: list[tuple[int, int, str]], known: dict[int, str]) -> dict[int, tuple[str, float]]:
    """{task: (consensus label, its posterior)} from (task, labeler, label) rows, by crowd-kit's DawidSkene."""
    import pandas as pd

    if not rows:
        return {}
    frame = pd.DataFrame(rows, columns=["task", "worker", "label"])
    frame = frame.sort_values(["task", "worker"], kind="stable").reset_index(drop=True)
    model = competence.dawid_skene_fit(frame=frame, true_labels=competence.known_series(frame=frame, known=known))
    probas = model.probas_
    return {int(task): (str(label), float(probas.at[task, label])) for task, label in model.labels_.items()}


def consensus_pairs(*, project: Project, where: Q | None = None) -> list[ConsensusPair]:
    """The consensus pair of each comparison task with kept judgments, in task id order."""
    judged = (
        Annotation.objects.filter(ANNOTATION_COUNTS, where or Q(), project=project, kind=Annotation.Kind.COMPARISON)
        .order_by("task_id", "id")
        .values_list("task_id", "labeler_id", "external_source", "ranking", "all_bad")
    )
    judgments = list(judged.iterator(chunk_size=5000))
    positions = _positions(sorted({task_id for task_id, *_ in judgments}))
    best_rows, worst_rows = [], []
    external: dict[str, int] = {}  # an imported label's source is one worker, numbered below every labeler id
    for task_id, labeler_id, source, ranking, all_bad in judgments:
        if labeler_id is None:
            labeler_id = external.setdefault(source, -1 - len(external))
        shown = positions.get(task_id, {})
        best = _label(ranking, all_bad, shown)
        if best is not None:
            best_rows.append((task_id, labeler_id, best))
        if len(shown) > 2:
            worst = _label(ranking, all_bad, shown, worst=True)
            if worst is not None:
                worst_rows.append((task_id, labeler_id, worst))
    best = _aggregate(best_rows, _known(project=project, positions=positions, worst=False))
    worst = _aggregate(worst_rows, _known(project=project, positions=positions, worst=True)) if worst_rows else {}

    pairs = []
    for task_id in sorted(best):
        label, confidence = best[task_id]
        if label == ALL_BAD or "=" in label:
            continue  # a tie or "all bad": nothing to prefer
        by_position = {position: response for response, position in positions[task_id].items()}
        top = by_position.get(int(label) - 1)
        if len(by_position) == 2:
            bottom = next((r for p, r in by_position.items() if r != top), None)
        else:
            worst_label = worst.get(task_id, (ALL_BAD, 0.0))[0]
            if worst_label == ALL_BAD or "=" in worst_label:
                continue
            bottom = by_position.get(int(worst_label) - 1)
        if top is None or bottom is None or top == bottom:
            continue
        pairs.append(ConsensusPair(task_id=task_id, chosen_id=top, rejected_id=bottom, confidence=confidence))
    return pairs


def confidence_margin(confidence: float) -> float:
    """TRL's margin for a consensus pair: 2·confidence − 1, floored at 0 (a coin flip 0, certainty 1)."""
    return round(max(0.0, 2.0 * confidence - 1.0), 6)
