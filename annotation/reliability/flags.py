"""Flags: annotations made much faster than usual, and labelers who are biased or out of line.

Each flag has a reason and its evidence. A labeler-level finding (a habit, a bias, an outlier) is
reported per labeler and also flags the annotations that show it, because the review queue reviews
annotations: the fast ones, the first-shown picks of a biased labeler, the judgments where an
outlier disagreed with every other labeler of the task. Flags are stored once per annotation and
reason (AnnotationFlag) and never withdrawn by a later run.

- Too fast. The project's median time per kind of task (demonstration, comparison) is taken over
  timed annotations (time_spent_ms > 0: an API client that sends no time gives 0, which means
  "not measured"). Below `fast_fraction` of it an annotation is fast; a labeler with at least
  `fast_habit_min` timed annotations of a kind, of which `fast_habit_share` or more are fast, is
  habitually fast. The median is trusted from `fast_min_timed` timed annotations of the kind.
- Position bias. Among a labeler's judgments with a single best response, how many chose the one
  shown first? Display order is random per task, so by chance that is 1/K of a K-response task.
  A one-sided binomial test (scipy.stats.binomtest) per K, combined by Fisher's method
  (scipy.stats.combine_pvalues) when a labeler judged tasks of several sizes, gives a p-value.
  Flagged when it is significant after a Bonferroni correction over the labelers tested, and the
  labeler picked the first response at least `position_share` of the time ("almost always").
- Outlier. Like Chatbot Arena's test for anomalous users (Chiang et al., 2024): each judgment is
  compared with the other judgments of the same item, and the evidence is summed over the user's
  judgments into one p-value. Arena compares a vote with hundreds of earlier votes on the same
  model pair; a task here has two to five judgments, whose rank p-values are too coarse (1/3 at
  best) for Fisher's combination to ever reject. So the baseline of a judgment comes from its
  co-labelers' record instead: on task i, D_i is the share of the co-labelers whose choice differs
  from the labeler's, and m_i the mean, over those co-labelers, of how often each disagrees with
  everyone else (pairs with this labeler left out). If the labeler were like the co-labelers'
  usual partners, Σ D_i would have mean Σ m_i and, each D_i lying in [0, 1], variance at most
  Σ m_i (1 - m_i). The one-sided z-test on that bound gives the p-value. Flagged when it is
  significant after Bonferroni over the labelers tested and the labeler's disagreement rate
  exceeds the expected one by at least `outlier_excess`. It works from an overlap of 2 (where a
  disagreement alone cannot say who is wrong, but the partners' other work can).
"""

from dataclasses import dataclass, field

import numpy as np
from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from annotation.models import Annotation, AnnotationFlag

from .config import QualityConfig

Reason = AnnotationFlag.Reason
WRITE_BATCH = 1000


@dataclass
class LabelerFlag:
    labeler_id: int
    reason: str
    detail: dict
    p_value: float | None = None
    # annotation id -> that annotation's own evidence, merged into the flag's detail
    annotations: dict[int, dict] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"reason": str(self.reason), "p_value": self.p_value, "detail": self.detail, "annotations": len(self.annotations)}


# Too fast -------------------------------------------------------------------------------------------


def _timed(project_id: int):
    return Annotation.objects.filter(project_id=project_id, time_spent_ms__gt=0).exclude(kind=Annotation.Kind.SKIP)


def time_medians(*, project_id: int) -> dict[str, dict]:
    """{kind: {"median_ms", "timed"}} over timed, submitted annotations; one GROUP BY on PostgreSQL."""
    from annotation.medians import Median, medians_by_window

    timed = _timed(project_id)
    if connection.vendor == "postgresql":
        rows = timed.values("kind").annotate(timed=Count("id"), median_ms=Median("time_spent_ms")).order_by()
        return {row["kind"]: {"median_ms": row["median_ms"], "timed": row["timed"]} for row in rows}
    counts = dict(timed.values("kind").annotate(n=Count("id")).order_by().values_list("kind", "n"))
    medians = medians_by_window(queryset=timed, group="kind")
    return {kind: {"median_ms": medians[kind], "timed": n} for kind, n in counts.items()}


def fast_flags(*, project_id: int, config: QualityConfig, medians: dict[str, dict]) -> tuple[dict, list[LabelerFlag]]:
    """Write a fast flag on every fast annotation not flagged yet; return the thresholds and the habitual labelers.

    Reads only ids and times of the fast annotations, chunk by chunk; labelers' shares are one
    GROUP BY per kind.
    """
    thresholds: dict[str, float] = {}
    habitual: list[LabelerFlag] = []
    for kind, stats in sorted(medians.items()):
        if stats["timed"] < config.fast_min_timed or not stats["median_ms"]:
            continue
        threshold = config.fast_fraction * stats["median_ms"]
        thresholds[kind] = threshold
        fast = _timed(project_id).filter(kind=kind, time_spent_ms__lt=threshold)
        new = fast.exclude(quality_flags__reason=Reason.FAST).values_list("id", "time_spent_ms")
        base = {"kind": kind, "median_ms": round(stats["median_ms"]), "threshold_ms": round(threshold)}
        batch = []
        for annotation_id, ms in new.iterator(chunk_size=WRITE_BATCH):
            batch.append(AnnotationFlag(
                annotation_id=annotation_id, project_id=project_id, reason=Reason.FAST,
                detail={**base, "time_spent_ms": ms},
            ))
            if len(batch) >= WRITE_BATCH:
                AnnotationFlag.objects.bulk_create(batch, ignore_conflicts=True)
                batch = []
        AnnotationFlag.objects.bulk_create(batch, ignore_conflicts=True)
        per_labeler = (
            _timed(project_id).filter(kind=kind).values("labeler_id")
            .annotate(timed=Count("id"), fast=Count("id", filter=Q(time_spent_ms__lt=threshold)))
            .order_by("labeler_id")
        )
        for row in per_labeler:
            share = row["fast"] / row["timed"]
            if row["timed"] >= config.fast_habit_min and share >= config.fast_habit_share:
                habitual.append(LabelerFlag(
                    labeler_id=row["labeler_id"], reason=Reason.FAST,
                    detail={**base, "fast": row["fast"], "timed": row["timed"], "share": round(share, 3)},
                ))
    return thresholds, habitual


# Position bias ---------------------------------------------------------------------------------------


def position_tests(*, annotations, labelers, shown, top_position, config: QualityConfig) -> tuple[int, list[LabelerFlag]]:
    """(labelers tested, flags) of the position-bias test over judgments with a single best response."""
    from scipy.stats import binomtest, combine_pvalues

    single = top_position >= 0
    annotations, labelers, shown, first = (
        annotations[single], labelers[single], shown[single], top_position[single] == 0
    )
    candidates = []
    for labeler in np.unique(labelers):
        mine = labelers == labeler
        n = int(mine.sum())
        if n < config.position_min:
            continue
        pvalues, expected = [], 0.0
        for k in np.unique(shown[mine]):
            group = mine & (shown == k)
            pvalues.append(binomtest(int(first[group].sum()), int(group.sum()), 1 / int(k), alternative="greater").pvalue)
            expected += group.sum() / k
        p = pvalues[0] if len(pvalues) == 1 else combine_pvalues(pvalues, method="fisher").pvalue
        picks = int(first[mine].sum())
        candidates.append((int(labeler), n, picks, expected / n, float(p), annotations[mine & first]))
    flagged = []
    for labeler, n, picks, chance, p, picked in candidates:
        share = picks / n
        if p < config.significance / len(candidates) and share >= config.position_share:
            detail = {
                "judgments": n, "first_picks": picks, "share": round(share, 3), "chance": round(chance, 3),
                "p_value": p,
            }
            flagged.append(LabelerFlag(
                labeler_id=labeler, reason=Reason.POSITION_BIAS, p_value=p, detail=detail,
                annotations={int(a): {"picked_position": 1} for a in picked},
            ))
    return len(candidates), flagged


# Outlier ---------------------------------------------------------------------------------------------


def outlier_tests(*, pairs, config: QualityConfig) -> tuple[int, list[LabelerFlag], list[dict]]:
    """(labelers tested, flags, every tested labeler's evidence) of the outlier test; see the module docstring.

    pairs: agreement.judgment_pairs (one row per judgment and co-judgment of the same task).
    """
    from scipy.stats import norm

    if pairs.empty:
        return 0, [], []
    per_pair = pairs.groupby(["labeler", "partner"])["agree"].agg(n="size", agreeing="sum")
    per_pair["disagreeing"] = per_pair["n"] - per_pair["agreeing"]
    totals = per_pair.groupby(level="labeler")[["n", "disagreeing"]].sum()
    rows = pairs.join(per_pair[["n", "disagreeing"]], on=["labeler", "partner"])
    rows = rows.join(totals.rename(columns={"n": "partner_n", "disagreeing": "partner_disagreeing"}), on="partner")
    # The partner's record without this labeler (the pair counts are symmetric).
    rest = rows["partner_n"] - rows["n"]
    rows = rows[rest > 0].copy()
    rows["baseline"] = (rows["partner_disagreeing"] - rows["disagreeing"]) / rest[rest > 0]
    rows["differs"] = (~rows["agree"]).astype(float)
    items = rows.groupby(["labeler", "task"]).agg(
        d=("differs", "mean"), m=("baseline", "mean"), annotation=("annotation", "first")
    )
    items["var"] = items["m"] * (1 - items["m"])
    summary = items.groupby(level="labeler").agg(n=("d", "size"), s=("d", "sum"), e=("m", "sum"), v=("var", "sum"))
    tested = summary[summary["n"] >= config.outlier_min]
    evidence, flagged = [], []
    for labeler, row in tested.iterrows():
        excess = (row["s"] - row["e"]) / row["n"]
        if row["v"] > 0:
            p = float(norm.sf((row["s"] - row["e"]) / np.sqrt(row["v"])))
        else:
            p = 0.0 if row["s"] > row["e"] else 1.0
        detail = {
            "tasks": int(row["n"]), "disagreement": round(row["s"] / row["n"], 3),
            "expected": round(row["e"] / row["n"], 3), "p_value": p,
        }
        evidence.append({"labeler_id": int(labeler), **detail})
        if p < config.significance / len(tested) and excess >= config.outlier_excess:
            mine = items.loc[labeler]
            against_all = mine[mine["d"] >= 1.0]["annotation"]
            flagged.append(LabelerFlag(
                labeler_id=int(labeler), reason=Reason.OUTLIER, p_value=p, detail=detail,
                annotations={int(a): {"disagreed_with_all": True} for a in against_all},
            ))
    return len(tested), flagged, evidence


# Storage and hand-over --------------------------------------------------------------------------------


def flags_write(*, project_id: int, flags: list[LabelerFlag]) -> None:
    """Store each labeler finding's annotations as AnnotationFlag rows; existing ones stay as they were."""
    batch = []
    for flag in flags:
        for annotation_id, own in flag.annotations.items():
            detail = {**flag.detail, **own}
            batch.append(AnnotationFlag(annotation_id=annotation_id, project_id=project_id, reason=flag.reason, detail=detail))
            if len(batch) >= WRITE_BATCH:
                AnnotationFlag.objects.bulk_create(batch, ignore_conflicts=True)
                batch = []
    AnnotationFlag.objects.bulk_create(batch, ignore_conflicts=True)


def flag_counts(*, project_id: int) -> dict[str, int]:
    counts = dict(
        AnnotationFlag.objects.filter(project_id=project_id).values("reason").annotate(n=Count("id"))
        .order_by().values_list("reason", "n")
    )
    return {reason: counts.get(reason, 0) for reason in Reason.values}


def annotation_flags_hand_over(*, project_id: int, hand_over, batch_size: int = 500) -> int:
    """Give every flagged annotation not handed over yet to `hand_over(annotation_ids)`; return how many.

    For the review queue: it passes the function that puts annotations in its queue. Batches are
    claimed with SELECT ... FOR UPDATE SKIP LOCKED and marked in the same transaction as the call,
    so a failing `hand_over` leaves its batch for the next call. An annotation with several flags
    is handed over once: all its pending flags are marked with the batch. Two callers running at
    the same moment could still both pass an annotation whose flags they locked separately, so
    `hand_over` should ignore an annotation it already holds.
    """
    from django.db import transaction

    handed = 0
    while True:
        with transaction.atomic():
            batch = list(
                AnnotationFlag.objects.select_for_update(skip_locked=True)
                .filter(project_id=project_id, handed_over_at__isnull=True)
                .order_by("id")
                .values_list("annotation_id", flat=True)[:batch_size]
            )
            if not batch:
                return handed
            annotation_ids = sorted(set(batch))
            hand_over(annotation_ids)
            AnnotationFlag.objects.filter(annotation_id__in=annotation_ids, handed_over_at__isnull=True).update(
                handed_over_at=timezone.now()
            )
            handed += len(annotation_ids)
