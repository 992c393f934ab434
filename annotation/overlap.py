"""Dynamic overlap: a comparison whose labels disagree gets one more label. See docs/quality.md, "Dynamic overlap".

- A project may turn it on (`Project.dynamic_overlap`, off by default). Its comparison tasks then
  start at the project's overlap like any other; when the submit that fills a task finds its
  counting labels agreeing less than `agreement_threshold`, the task's `required` grows by one,
  up to `max_overlap`, in the same transaction and under the task's row lock. The task stays
  open, so the claim (sql/claim.py, unchanged) serves it to one more labeler who has not seen it.
- Agreement is the share of the counting labels whose best response (the ranking's top group; a
  tie is a group of its own, an "all bad" judgement without a ranking is one more answer) is the
  most common one. Two labels agree 1.0 or 0.5; three 1.0, 0.67 or 0.33.
- Demonstrations and gold tasks never grow: there is nothing to agree on, or the answer is known.
- The bounds of the settings live here; the form, the API serializer and the service read them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from .errors import InvalidInput

MAX_OVERLAP_CAP = 20  # the most labels a task can ever grow to
MAX_OVERLAP_DEFAULT = 3
THRESHOLD_MIN = 0.5
THRESHOLD_MAX = 1.0
THRESHOLD_DEFAULT = 0.6  # 1 of 2 asks for a third label; 2 of 3 is enough
SETTINGS = ("dynamic_overlap", "max_overlap", "agreement_threshold")
# A share compared with a threshold: 2 of 3 is 0.666..., which a threshold of 0.6667 should not miss by rounding.
_EPSILON = 1e-9

DYNAMIC_OVERLAP_HELP = "A comparison whose labels disagree gets one more label, up to the maximum overlap."
MAX_OVERLAP_HELP = f"The most labels a disagreed comparison can get (from the overlap up to {MAX_OVERLAP_CAP})."
THRESHOLD_HELP = (
    f"Share of labels that must pick the same best response, from {THRESHOLD_MIN:g} to {THRESHOLD_MAX:g}; "
    "below it the task gets one more label."
)


def top_answer(ranking) -> frozenset | None:
    """A label's answer for agreement: its top group of response ids, or None for a judgement without a ranking."""
    if not ranking:
        return None
    first = ranking[0]
    return frozenset(first if isinstance(first, list) else [first])


def majority_share(rankings: Iterable) -> float | None:
    """The share of the rankings whose top answer is the most common one; None with fewer than two."""
    answers = Counter(top_answer(ranking) for ranking in rankings)
    total = sum(answers.values())
    if total < 2:
        return None
    return answers.most_common(1)[0][1] / total


def needs_another_label(*, rankings: list, threshold: float) -> bool:
    """Whether labels this far apart call for one more (the caller checks the cap and the setting)."""
    share = majority_share(rankings)
    return share is not None and share + _EPSILON < threshold


def grown_required(*, done: int, required: int, max_overlap: int) -> int | None:
    """The task's new `required` when it grows (one label more than it has), or None at the cap."""
    target = max(done, required) + 1
    return target if target <= max_overlap else None


def clean_settings(*, fields: dict, overlap: int, dynamic: bool, max_overlap: int) -> None:
    """Check the dynamic-overlap settings among `fields` against the project's values after the update.

    Raises InvalidInput naming the field. `overlap`, `dynamic` and `max_overlap` are the values the
    project will have: the ones in `fields`, else the stored ones.
    """
    if "dynamic_overlap" in fields and not isinstance(fields["dynamic_overlap"], bool):
        raise InvalidInput("dynamic_overlap must be true or false.", field="dynamic_overlap")
    if "max_overlap" in fields:
        value = fields["max_overlap"]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_OVERLAP_CAP:
            raise InvalidInput(f"max_overlap must be a whole number from 1 to {MAX_OVERLAP_CAP}.", field="max_overlap")
    if "agreement_threshold" in fields:
        value = fields["agreement_threshold"]
        in_bounds = isinstance(value, (int, float)) and THRESHOLD_MIN <= value <= THRESHOLD_MAX
        if isinstance(value, bool) or not in_bounds:
            raise InvalidInput(
                f"agreement_threshold must be a number from {THRESHOLD_MIN:g} to {THRESHOLD_MAX:g}.",
                field="agreement_threshold",
            )
    if dynamic and max_overlap < overlap:
        field = "max_overlap" if "max_overlap" in fields or "overlap" not in fields else "overlap"
        raise InvalidInput(
            f"max_overlap ({max_overlap}) must be at least the overlap ({overlap}) with dynamic overlap on.",
            field=field,
        )
