"""The dashboard's quality section, prepared from the cached report (no query, no statistics here).

Krippendorff's own reading of alpha: at least 0.8 is reliable, 0.667 to 0.8 allows tentative
conclusions, below that the labels disagree too much to rely on.
"""

from datetime import datetime

from django.conf import settings

from annotation.models import AnnotationFlag

from .config import quality_config
from .store import quality_status

REASONS = dict(AnnotationFlag.Reason.choices)
HEAT_STEPS = 10  # agreement matrix cells are shaded in tenths (CSS classes heat-0 … heat-10)


def _alpha_reading(value: float | None) -> str:
    if value is None:
        return "undefined"
    if value >= 0.8:
        return "reliable"
    if value >= 0.667:
        return "tentative"
    return "low"


def _evidence(flag: dict) -> str:
    """One line a person can read, from a flag's detail."""
    d = flag["detail"]
    if flag["reason"] == AnnotationFlag.Reason.FAST:
        return (f"{d['fast']} of {d['timed']} {d['kind']}s under {d['threshold_ms'] / 1000:.1f} s "
                f"(project median {d['median_ms'] / 1000:.1f} s)")
    if flag["reason"] == AnnotationFlag.Reason.POSITION_BIAS:
        return f"picked the first shown {d['first_picks']} of {d['judgments']} times (chance {d['chance']:.0%})"
    return (f"disagreed with co-labelers {d['disagreement']:.0%} of the time over {d['tasks']} tasks "
            f"(their record predicts {d['expected']:.0%})")


def _p_display(p: float | None) -> str:
    if p is None:
        return "–"
    return f"{p:.1e}" if p < 0.001 else f"{p:.3f}"


def _matrix(report: dict, limit: int) -> dict:
    """The most active labelers' pair agreement as rows of cells, each with a shade class."""
    top = [row for row in report["labelers"] if row["judgments"]][:limit]
    pairs = {}
    for pair in report["pairs"]:
        pairs[(pair["a"], pair["b"])] = pairs[(pair["b"], pair["a"])] = pair
    rows = []
    for row in top:
        cells = []
        for other in top:
            pair = pairs.get((row["labeler_id"], other["labeler_id"]))
            if other is row or pair is None:
                cells.append({"empty": True, "self": other is row})
            else:
                cells.append({
                    "empty": False, "percent": round(100 * pair["rate"]), "shared": pair["shared"],
                    "agreeing": pair["agreeing"], "heat": round(HEAT_STEPS * pair["rate"]), "with": other["username"],
                })
        rows.append({"username": row["username"], "cells": cells})
    return {"names": [row["username"] for row in top], "rows": rows, "hidden": max(0, len(report["labelers"]) - limit)}


def quality_section(*, project_id: int) -> dict:
    """Everything the dashboard's quality section and its charts need, from one cache read."""
    found = quality_status(project_id=project_id)
    report = found["report"]
    section = {
        "report": report,
        "queued_at": found["queued_at"] and datetime.fromisoformat(found["queued_at"]),
        "refresh_minutes": max(1, round(settings.QUALITY_REFRESH_SECONDS / 60)),
    }
    if report is None:
        return section
    computed_at = datetime.fromisoformat(report["computed_at"])
    flagged = []
    for row in report["labelers"]:
        for flag in row["flags"]:
            flagged.append({
                "username": row["username"], "reason": flag["reason"], "reason_label": REASONS.get(flag["reason"], ""),
                "p_value": _p_display(flag["p_value"]), "annotations": flag["annotations"], "evidence": _evidence(flag),
            })
    labelers = [
        {**row, "flag_badges": [(reason, reason.replace("_", " ")) for reason in sorted({f["reason"] for f in row["flags"]})]}
        for row in report["labelers"] if row["judgments"]
    ]
    section.update(
        computed_at=computed_at,
        labelers=labelers,
        alpha=[{**row, "reading": _alpha_reading(row["alpha"])} for row in report["alpha"]],
        matrix=_matrix(report, quality_config().matrix_labelers),
        flagged=flagged,
        flag_total=sum(report["flag_counts"].values()),
        chart_data={
            "labelers": [row["username"] for row in labelers],
            "dawid_skene": [row["dawid_skene"] for row in labelers],
            "mace": [row["mace"] for row in labelers],
            "flagged": [bool(row["flags"]) for row in labelers],
            "alpha": {
                "labels": [row["label"] for row in report["alpha"] if row["alpha"] is not None],
                "values": [row["alpha"] for row in report["alpha"] if row["alpha"] is not None],
            },
        },
    )
    return section
