"""How a comparison becomes preference pairs, and their margins (the rules exporters.py's docstring states).

Plain Python, no Django: the benches that label synthetic data without the platform pair it the same way.
"""

from __future__ import annotations

# A two-response comparison's margin by its strength (Annotation.Strength's values; a tie gives no pair).
STRENGTH_MARGIN = {"much_better": 1.0, "better": 0.5, "slightly_better": 0.25}
RANK_GAP_MARGIN = 0.25
MAX_MARGIN = 1.0
EDIT_MARGIN = 1.0


TIE_MARGIN = 0.0


def ranking_pairs(*, ranking: list[list[int]], strength: str = "", ties: bool = False) -> list[tuple[int, int, float]]:
    """(better id, worse id, margin) for each ordered pair of a ranking; ties give no pair.

    With `ties`, each two responses of one group also give two pairs, one in each order, with
    margin TIE_MARGIN, after the ranking's pairs: trained on both, a Bradley-Terry loss is least
    where the two rewards are equal, so a reward model learns to score tied answers alike.
    """
    groups = [sorted(group) for group in ranking if group]
    total = sum(len(group) for group in groups)
    pairs = []
    for i, better_group in enumerate(groups):
        for j in range(i + 1, len(groups)):
            if total == 2 and strength in STRENGTH_MARGIN:
                margin = STRENGTH_MARGIN[strength]
            else:
                margin = min(MAX_MARGIN, RANK_GAP_MARGIN * (j - i))
            pairs.extend((better, worse, float(margin)) for better in better_group for worse in groups[j])
    if ties:
        for group in groups:
            for i, first in enumerate(group):
                for second in group[i + 1:]:
                    pairs.extend(((first, second, TIE_MARGIN), (second, first, TIE_MARGIN)))
    return pairs


def annotation_pairs(
    *, ranking, strength: str, all_bad: bool, edit: tuple[int, int] | None, ties: bool = False
) -> list:
    """(better id, worse id, margin) of one comparison: its ranking's pairs, then its edit's pair.

    An "all bad" comparison gives no ranking pair, tied or not.
    """
    pairs = [] if all_bad else ranking_pairs(ranking=ranking, strength=strength, ties=ties)
    if edit is not None:
        pairs.append((*edit, EDIT_MARGIN))
    return pairs
