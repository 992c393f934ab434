"""Krippendorff's alpha per kind of judgment, computed by the `krippendorff` package.

Units are tasks (or, for response flags, a task's shown responses), coders are labelers, and each
kind has the level of measurement its values have:

| kind                | values                                   | level   |
|---------------------|------------------------------------------|---------|
| choice              | the best response(s): "1", "2", "1=2", … | nominal |
| preference (pairs)  | -3 … +3, signed strength                 | ordinal |
| all_bad             | 0 / 1                                    | nominal |
| <flag> per response | 0 / 1 for each shown response            | nominal |

The library is given value counts (units × values) rather than a labelers × units matrix: the
same numbers (it turns a matrix into exactly these counts), in memory that grows with the units,
not with units × labelers. Units with fewer than two values are left out; they add nothing to
alpha's coincidences. Alpha is undefined (None, with the reason) without a unit judged twice, with
one value only, or when every pairable value is the same.
"""

from dataclasses import asdict, dataclass

import numpy as np

from annotation.models import Annotation

from . import labels
from .judgments import NO_VALUE, JudgmentTable

_FLAG_NAMES = dict(Annotation.Flag.choices)
# (kind, what people read, level of measurement)
KINDS = [
    ("choice", "Best response", "nominal"),
    ("preference", "Preference strength (pairs)", "ordinal"),
    ("all_bad", "All bad", "nominal"),
    *[(f"flag_{flag}", f"Flag: {_FLAG_NAMES[flag].lower()}", "nominal") for flag in labels.FLAG_KINDS],
]


@dataclass
class AlphaResult:
    kind: str
    label: str
    level: str
    alpha: float | None
    units: int  # units with two or more values
    values: int  # values in those units
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def value_counts(*, units: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(counts per unit and value, the sorted value domain) for the units with two or more values."""
    domain = np.unique(values)
    unit_ids, unit_index = np.unique(units, return_inverse=True)
    counts = np.zeros((len(unit_ids), len(domain)), dtype=np.int64)
    np.add.at(counts, (unit_index, np.searchsorted(domain, values)), 1)
    return counts[counts.sum(axis=1) >= 2], domain


def alpha_of(*, kind: str, label: str, level: str, units: np.ndarray, values: np.ndarray) -> AlphaResult:
    import krippendorff

    counts, domain = value_counts(units=units, values=values)
    result = AlphaResult(kind=kind, label=label, level=level, alpha=None, units=len(counts), values=int(counts.sum()))
    if not len(counts):
        result.note = "No unit has two judgments yet."
    elif len(domain) < 2:
        result.note = "Every judgment gave the same value."
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            value = float(krippendorff.alpha(value_counts=counts, value_domain=domain, level_of_measurement=level))
        if np.isnan(value):
            result.note = "Every pairable judgment gave the same value."
        else:
            result.alpha = value
    return result


def alphas(table: JudgmentTable, *, choice_codes: np.ndarray) -> list[AlphaResult]:
    """Alpha for every kind in KINDS over the table. choice_codes: the choice column, coded in label order."""
    tasks = table.array("task")
    results = []
    for kind, label, level in KINDS:
        if kind == "choice":
            keep = choice_codes != NO_VALUE
            units, values = tasks[keep], choice_codes[keep]
        elif kind == "preference":
            column = table.array("preference")
            keep = column != NO_VALUE
            units, values = tasks[keep], column[keep]
        elif kind == "all_bad":
            units, values = tasks, table.array("all_bad")
        else:
            units, values = _flag_units(table, labels.FLAG_KINDS.index(kind.removeprefix("flag_")))
        results.append(alpha_of(kind=kind, label=label, level=level, units=units, values=values))
    return results


def _flag_units(table: JudgmentTable, flag_index: int) -> tuple[np.ndarray, np.ndarray]:
    """One unit per (task, shown position): the value is 1 when the judgment raised the flag on it."""
    tasks, shown, bits = table.array("task"), table.array("shown"), table.array("flags")
    shown = np.minimum(shown, labels.MAX_FLAGGED_POSITIONS)
    rows = np.repeat(np.arange(len(tasks)), shown)
    positions = np.arange(len(rows)) - np.repeat(np.cumsum(shown) - shown, shown)
    units = tasks[rows] * labels.MAX_FLAGGED_POSITIONS + positions
    shift = positions * len(labels.FLAG_KINDS) + flag_index
    values = (bits[rows] >> shift) & 1
    return units, values
