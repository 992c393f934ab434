"""What a comparison judgment says, as labels that crowd models and alpha can count.

Every label is defined by the responses' display positions, which are stored per task and are the
same for every labeler (TaskResponse.position). Response ids would make each task's label space
its own; positions give all tasks the same small one, and make position bias visible.

- choice: the best response(s) of the ranking, as 1-based positions: "1", "2", or "1=2" when the
  top is a tie. For a pair this is exactly "first better", "second better" or "tie". For K > 2
  responses it is the top of the ranking (the order below it is not compared). One label per task
  keeps tasks independent, which the crowd models and the outlier test assume, and matches the
  dashboard's agreement on the best response. An "all bad" judgment without a ranking has none.
- preference (pairs only): a signed 7-point scale from the ranking and the strength: +3 the first
  shown is much better, +2 better, +1 slightly better, 0 tie, -1..-3 the same for the second. It
  is ordinal: the steps are ordered but not evenly spaced.
- all_bad: 1 when the labeler marked every response bad, else 0.
- response flags: per shown response and per flag kind (fails the instruction, factual error,
  harmful), 1 when the labeler raised it.
"""

from annotation.models import Annotation

STRENGTH_STEPS = {
    Annotation.Strength.SLIGHTLY_BETTER: 1,
    Annotation.Strength.BETTER: 2,
    Annotation.Strength.MUCH_BETTER: 3,
}
FLAG_KINDS = list(Annotation.Flag.values)
# Response flags are kept as bits (position * len(FLAG_KINDS) + flag index) of one 64-bit integer.
MAX_FLAGGED_POSITIONS = 63 // len(FLAG_KINDS)


def _group(item) -> list:
    return item if isinstance(item, list) else [item]


def choice_label(ranking, positions: dict[int, int]) -> str | None:
    """The top group of a ranking of response ids as 1-based display positions ("1", "2", "1=2")."""
    if not ranking:
        return None
    top = _group(ranking[0])
    shown = sorted(positions[r] + 1 for r in top if r in positions)
    if not shown or len(shown) != len(top):
        return None
    return "=".join(str(p) for p in shown)


def top_position(ranking, positions: dict[int, int]) -> int:
    """The 0-based display position of a single best response; -1 for a tie at the top or no ranking."""
    if not ranking:
        return -1
    top = _group(ranking[0])
    if len(top) != 1 or top[0] not in positions:
        return -1
    return positions[top[0]]


def preference_scale(ranking, strength: str, positions: dict[int, int]) -> int | None:
    """The signed 7-point preference of a pair (+ for the first shown); None when it is not a pair or lacks strength."""
    if len(positions) != 2 or not ranking:
        return None
    if len(ranking) == 1:
        return 0  # one group holding both responses: a tie
    step = STRENGTH_STEPS.get(strength)
    winner = _group(ranking[0])
    if step is None or len(winner) != 1 or winner[0] not in positions:
        return None
    return step if positions[winner[0]] == 0 else -step


def flag_bits(flags: dict, positions: dict[int, int]) -> int:
    """The response flags of a judgment as bits: position * len(FLAG_KINDS) + the flag's index."""
    bits = 0
    for key, raised in (flags or {}).items():
        try:
            position = positions.get(int(key))
        except (TypeError, ValueError):
            continue
        if position is None or position >= MAX_FLAGGED_POSITIONS:
            continue
        for flag in raised or []:
            if flag in FLAG_KINDS:
                bits |= 1 << (position * len(FLAG_KINDS) + FLAG_KINDS.index(flag))
    return bits
