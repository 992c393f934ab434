"""Thresholds and limits of the quality run. Each field says what it is for; docs/quality.md explains them."""

from dataclasses import dataclass, field, fields

from django.conf import settings

REPORT_VERSION = 1  # raise it when the report's shape changes: readers then ignore older reports


@dataclass(frozen=True)
class QualityConfig:
    max_judgments: int = field(
        default=200_000,
        metadata={"help": "Comparison judgments one run reads, newest tasks first; bounds its memory."},
    )
    chunk_tasks: int = field(default=500, metadata={"help": "Tasks read per chunk (three queries each)."})
    # Too fast
    fast_fraction: float = field(
        default=0.2, metadata={"help": "An annotation is fast below this share of the project's median for its kind."}
    )
    fast_min_timed: int = field(
        default=20, metadata={"help": "Timed annotations of a kind needed before its median is trusted."}
    )
    fast_habit_share: float = field(
        default=0.5, metadata={"help": "A labeler is habitually fast when at least this share of their work is fast."}
    )
    fast_habit_min: int = field(default=10, metadata={"help": "Timed annotations a labeler needs for the habit flag."})
    # Statistical flags
    significance: float = field(
        default=0.01,
        metadata={"help": "Family-wise error rate of each labeler test; Bonferroni-divided by the labelers tested."},
    )
    position_min: int = field(
        default=20, metadata={"help": "Judgments with a single best response a labeler needs for the position test."}
    )
    position_share: float = field(
        default=0.8, metadata={"help": "Share of first-shown picks at or above which a significant bias is flagged."}
    )
    outlier_min: int = field(
        default=20, metadata={"help": "Tasks shared with other labelers a labeler needs for the outlier test."}
    )
    outlier_excess: float = field(
        default=0.1,
        metadata={"help": "Disagreement above the co-labelers' usual rate, at or above which an outlier is flagged."},
    )
    # Display
    matrix_labelers: int = field(
        default=20, metadata={"help": "Most active labelers shown in the dashboard's pair agreement matrix."}
    )


def quality_config() -> QualityConfig:
    """The defaults, overridden by settings named QUALITY_<FIELD> (for example QUALITY_MAX_JUDGMENTS)."""
    overrides = {
        f.name: getattr(settings, f"QUALITY_{f.name.upper()}")
        for f in fields(QualityConfig)
        if hasattr(settings, f"QUALITY_{f.name.upper()}")
    }
    return QualityConfig(**overrides)
