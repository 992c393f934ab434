"""Agreement per labeler pair on the best response (the choice label of labels.py).

Two labelers agree on a task when their choice labels are equal, so a tie at the top agrees only
with the same tie, as on the dashboard's overall agreement. Each pair comes with the number of
tasks both judged, so a rate over three tasks reads as what it is.
"""

from dataclasses import asdict, dataclass


@dataclass
class PairAgreement:
    a: int  # labeler ids, a < b
    b: int
    shared: int  # tasks both judged with a choice
    agreeing: int

    @property
    def rate(self) -> float:
        return self.agreeing / self.shared

    def as_dict(self) -> dict:
        return {**asdict(self), "rate": self.rate}


def judgment_pairs(*, annotations, tasks, labelers, choices):
    """Every ordered pair of different labelers' choices on one task: one row per (judgment, co-judgment).

    Columns: task, labeler, annotation, partner, agree. Its size is Σ n(n-1) over tasks judged n
    times, so about (overlap - 1) rows per judgment.
    """
    import pandas as pd

    frame = pd.DataFrame({"task": tasks, "labeler": labelers, "annotation": annotations, "choice": choices})
    pairs = frame.merge(frame[["task", "labeler", "choice"]], on="task", suffixes=("", "_partner"))
    pairs = pairs[pairs["labeler"] != pairs["labeler_partner"]]
    return pd.DataFrame(
        {
            "task": pairs["task"].to_numpy(),
            "labeler": pairs["labeler"].to_numpy(),
            "annotation": pairs["annotation"].to_numpy(),
            "partner": pairs["labeler_partner"].to_numpy(),
            "agree": (pairs["choice"] == pairs["choice_partner"]).to_numpy(),
        }
    )


def pair_agreement(pairs) -> list[PairAgreement]:
    """Shared tasks and agreements per unordered labeler pair, most shared first."""
    one_way = pairs[pairs["labeler"] < pairs["partner"]]
    grouped = one_way.groupby(["labeler", "partner"])["agree"].agg(["size", "sum"])
    result = [
        PairAgreement(a=int(a), b=int(b), shared=int(size), agreeing=int(agreeing))
        for (a, b), size, agreeing in zip(grouped.index, grouped["size"], grouped["sum"])
    ]
    result.sort(key=lambda p: (-p.shared, p.a, p.b))
    return result
