"""Gold tasks: the rules, each written once. See docs/quality.md, "Gold tasks and qualification".

- A gold task (Task.is_gold) has a known answer in Task.gold: for a comparison
  {"ranking": [[response id, ...], ...], "explanation": "..."}, best first, a group of several a
  tie; for a demonstration {"reference": "...", "explanation": "..."}, a reference answer that
  reviewers and training mode show, and that nothing grades.
- `gold_matches` says when a judgement matches the gold answer, `gold_grade` turns a submit into
  Annotation.gold_correct.
- `gold_draw` decides, per claim, whether the claim serves a gold task: a keyed hash, so it is
  deterministic for tests and unpredictable for labelers.
- `accuracy_interval` is the 95% Wilson interval of a labeler's accuracy, from scipy.
- The bounds of the project settings live here, and the form, the API serializer and the service
  read them.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from django.conf import settings

GOLD_RATE_MAX = 1.0  # a share of claims
QUALIFICATION_TASKS_MAX = 1000
ACCURACY_MAX = 1.0
CONFIDENCE = 0.95
# A share compared with a threshold: 7 of 10 is 0.7 even where floating point says 0.69999...
_EPSILON = 1e-9


# The import's terms and the task's ---------------------------------------------------------------


def gold_with_ids(gold: dict | None, response_ids: list[int]) -> dict | None:
    """Task.gold for an import line's gold answer: its ranking's response indexes become response ids."""
    if gold is None or "ranking" not in gold:
        return gold
    return {**gold, "ranking": [[response_ids[i] for i in group] for group in gold["ranking"]]}


def gold_in_line_terms(gold: dict | None, response_ids: list[int]) -> dict | None:
    """gold_with_ids backwards, so a re-import can compare a line's gold answer with the stored one."""
    if gold is None or "ranking" not in gold:
        return gold
    index = {pk: i for i, pk in enumerate(response_ids)}
    return {**gold, "ranking": [[index.get(pk, -1) for pk in group] for group in gold["ranking"]]}


# Grading -------------------------------------------------------------------------------------


def _top(ranking) -> frozenset | None:
    if not ranking:
        return None
    first = ranking[0]
    return frozenset(first if isinstance(first, list) else [first])


def gold_matches(*, gold_ranking: list, ranking: list) -> bool:
    """Whether a ranking matches the gold ranking: the labeler's top group equals gold's top group.

    Groups are compared as sets of response ids, so the order inside a tie does not matter, but a
    tie does: "A and B tie for best" matches only the same tie, never "A is best" (and the other
    way round). Below the top nothing is compared. A judgement that ranks nothing (all bad, no
    ranking) has no top group and does not match.
    """
    labeler_top = _top(ranking)
    return labeler_top is not None and labeler_top == _top(gold_ranking)


def gold_grade(*, gold: dict | None, fields: dict) -> bool | None:
    """Annotation.gold_correct for a submit's cleaned fields on a gold task.

    None when there is nothing to grade: a skip, a demonstration (its reference is for review
    and training mode), or a gold answer without a ranking.
    """
    if fields.get("kind") != "comparison" or not isinstance(gold, dict) or not gold.get("ranking"):
        return None
    return gold_matches(gold_ranking=gold["ranking"], ranking=fields.get("ranking") or [])


# Serving -------------------------------------------------------------------------------------


def serving_on(project) -> bool:
    """Whether the claim has gold work to do in this project (a gold rate, or qualification)."""
    return project.gold_rate > 0 or project.qualification_tasks > 0


@lru_cache(maxsize=1)
def _draw_key() -> bytes:
    # Derived from the secret key, so labelers cannot compute the draw; stable across processes.
    return hashlib.sha256(b"feedbackloop-gold-draw:" + settings.SECRET_KEY.encode()).digest()


def gold_draw(*, project_id: int, labeler_id: int, task_id: int, served: int) -> float:
    """A number in [0, 1) for one claim; the claim serves a gold task when it is below the gold rate.

    The claim is identified by the labeler, the real task it would otherwise get (task_id) and
    how many gold tasks the labeler was served so far (served). Each real task is claimed once
    per labeler and each gold task served moves `served` on, so no two claims share a draw: over
    a labeler's claims the share of gold tasks is the gold rate, in an order nobody can predict
    without the server's secret key. The same state gives the same draw, so tests replay it.
    """
    message = f"{project_id}:{labeler_id}:{task_id}:{served}".encode()
    digest = hashlib.blake2b(message, key=_draw_key(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def serves_gold(*, rate: float, draw: float) -> bool:
    return draw < rate


# Accuracy -------------------------------------------------------------------------------------


def at_least(part: int, whole: int, share: float) -> bool:
    """part / whole >= share, with whole > 0."""
    return part / whole >= share - _EPSILON


def accuracy_interval(*, correct: int, answered: int) -> tuple[float, float] | None:
    """The 95% Wilson score interval of correct / answered (scipy); None without answers."""
    if answered <= 0:
        return None
    from scipy.stats import binomtest  # imported on first use: the claim and submit never need it

    interval = binomtest(correct, answered).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return float(interval.low), float(interval.high)


# Training mode --------------------------------------------------------------------------------


def gold_reveal(*, task, gold_correct: bool | None) -> dict:
    """What training mode shows after a gold task: the expected answer, its explanation, the match.

    One shape for both kinds: a comparison has a ranking (response ids, best first) and an empty
    reference; a demonstration has a reference and an empty ranking, and `correct` is null.
    """
    gold = task.gold or {}
    return {
        "kind": task.kind,
        "ranking": gold.get("ranking", []) if task.kind == "comparison" else [],
        "reference": gold.get("reference", "") if task.kind == "demonstration" else "",
        "explanation": gold.get("explanation", ""),
        "correct": gold_correct,
    }
