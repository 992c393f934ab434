"""A project's comparison judgments, read in bounded chunks into a compact column table.

The walk goes over the project's comparison tasks that hold stored work, newest first, `chunk_tasks`
at a time, with three queries per chunk: the task ids (a keyset on the primary key, so a chunk
never rescans earlier ones), the positions their responses are shown at, and their annotations.
Each judgment becomes one row of integer columns (array('q'), 8 bytes a cell), with the labels of
labels.py. The walk stops after the chunk that reaches `max_judgments`, so a run holds at most
that many rows plus one chunk, however large the project grows; what it keeps is the newest work.
"""

from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from annotation.models import ANNOTATION_COUNTS, LABELER_WORK, Annotation, Task, TaskResponse

from . import labels

NO_VALUE = -(2**62)  # "no label" in an integer column (a judgment without a ranking, a K > 2 scale)
COLUMNS = ("annotation", "task", "labeler", "shown", "choice", "top_position", "preference", "all_bad", "flags")


@dataclass
class JudgmentTable:
    """Columns of integers, one row per judgment; `choices` decodes the choice column."""

    columns: dict[str, array] = field(default_factory=lambda: {name: array("q") for name in COLUMNS})
    choices: list[str] = field(default_factory=list)
    known: dict[int, str] = field(default_factory=dict)  # task id -> the known choice label (gold)
    tasks: int = 0
    truncated: bool = False
    _codes: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.columns["annotation"])

    def choice_code(self, label: str | None) -> int:
        if label is None:
            return NO_VALUE
        code = self._codes.get(label)
        if code is None:
            code = self._codes[label] = len(self.choices)
            self.choices.append(label)
        return code

    def append(self, **values: int) -> None:
        for name in COLUMNS:
            self.columns[name].append(values[name])

    def array(self, name: str) -> np.ndarray:
        """A column as a NumPy array, without copying it."""
        column = self.columns[name]
        return np.frombuffer(column, dtype=np.int64) if len(column) else np.zeros(0, dtype=np.int64)


def judged_annotations(*, task_ids: list[int]):
    """The comparison annotations that count, of these tasks: skips never do, nor rejected or corrected ones,
    nor labels imported from an external source (no labeler's work)."""
    return Annotation.objects.filter(
        ANNOTATION_COUNTS, LABELER_WORK, task_id__in=task_ids, kind=Annotation.Kind.COMPARISON
    )


def judgments_read(
    *, project_id: int, max_judgments: int, chunk_tasks: int, known_rankings: Mapping[int, list] | None = None
) -> JudgmentTable:
    """Stream the project's comparison judgments, newest tasks first, into a JudgmentTable.

    known_rankings maps a task id to its known ranking of response ids (a gold task's answer); it
    becomes table.known[task_id], a choice label, for the tasks read.
    """
    table = JudgmentTable()
    known_rankings = known_rankings or {}
    tasks = Task.objects.filter(project_id=project_id, kind=Task.Kind.COMPARISON, done__gt=0)
    cursor = None
    while len(table) < max_judgments:
        page = tasks if cursor is None else tasks.filter(id__lt=cursor)
        ids = list(page.order_by("-id").values_list("id", flat=True)[:chunk_tasks])
        if not ids:
            return table
        cursor = ids[-1]
        positions: dict[int, dict[int, int]] = {task_id: {} for task_id in ids}
        for task_id, response_id, position in TaskResponse.objects.filter(task_id__in=ids).values_list(
            "task_id", "response_id", "position"
        ):
            positions[task_id][response_id] = position
        for task_id in ids:
            if task_id in known_rankings:
                label = labels.choice_label(known_rankings[task_id], positions[task_id])
                if label is not None:
                    table.known[task_id] = label
        rows = judged_annotations(task_ids=ids).order_by("task_id", "id").values_list(
            "id", "task_id", "labeler_id", "ranking", "strength", "all_bad", "flags"
        )
        for annotation_id, task_id, labeler_id, ranking, strength, all_bad, flags in rows:
            shown = positions[task_id]
            preference = labels.preference_scale(ranking, strength, shown)
            table.append(
                annotation=annotation_id,
                task=task_id,
                labeler=labeler_id,
                shown=len(shown),
                choice=table.choice_code(labels.choice_label(ranking, shown)),
                top_position=labels.top_position(ranking, shown),
                preference=NO_VALUE if preference is None else preference,
                all_bad=int(bool(all_bad)),
                flags=labels.flag_bits(flags, shown),
            )
        table.tasks += len(ids)
    table.truncated = (tasks if cursor is None else tasks.filter(id__lt=cursor)).exists()
    return table
