"""Which annotations an export or a dataset snapshot keeps: the quality filters of docs/quality.md.

Rejected annotations are always out, and a corrected one always gives way to its correction
(models.ANNOTATION_COUNTS); these filters leave out more, never less:

- exclude_gold      annotations on gold tasks (their answers are known; some teams keep them apart);
- reviewed_only     only annotations a reviewer accepted, and reviewers' own corrections;
- exclude_flagged   annotations the quality run flagged (too fast, position bias, outlier), unless a
                    reviewer accepted them since;
- min_competence    labelers whose Dawid-Skene competence (0..1) in the project's last quality
                    report is below this; a labeler the report has no figure for is kept;
- consensus         preference only: one pair per comparison task from crowd-kit's Dawid-Skene
                    (annotation/consensus.py), its confidence as the pair's "margin" or as a "weight".
- ties              preference only, and the one option that adds lines: two responses a labeler
                    tied also give two pairs, one in each order, margin 0 (export_pairs.py), so a
                    reward model learns to score equally good answers alike. Not with consensus.

- external          labels imported from an external source (annotation/import_formats/): kept by
                    default, "exclude" leaves them out, "only" keeps nothing else. Labels an
                    import hid (labels=hide) count nowhere, so no export has them.

And the admin's everyday slices: `since` and `until` (a date, UTC, or an ISO time), one `labeler`
(a username), and `since_last_export` (what came in since this project's last complete export in
the same format, exports.py's ExportRecord; resolved into `since` when the export starts).

The same dataclass reads query parameters (the export API), JSON (a run's `data` section) and
command-line flags, so each bound is written once here.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields

from django.db.models import Exists, OuterRef, Q

from .errors import InvalidInput

CONSENSUS_MODES = ("", "margin", "weight")
EXTERNAL_MODES = ("", "exclude", "only")
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class ExportFilters:
    exclude_gold: bool = field(default=False, metadata={"help": "Leave out annotations on gold tasks."})
    reviewed_only: bool = field(
        default=False, metadata={"help": "Keep only annotations a reviewer accepted, and reviewers' corrections."}
    )
    exclude_flagged: bool = field(
        default=False,
        metadata={"help": "Leave out annotations the quality check flagged, unless a reviewer accepted them."},
    )
    min_competence: float | None = field(
        default=None,
        metadata={"help": "Leave out labelers whose competence (0 to 1) is below this; unknown competence is kept.",
                  "min": 0.0, "max": 1.0},
    )
    consensus: str = field(
        default="",
        metadata={"help": "Preference only: one Dawid-Skene pair per comparison, its confidence as the margin "
                          "or as a weight column; empty: every labeler's pairs.", "choices": list(CONSENSUS_MODES)},
    )
    ties: bool = field(
        default=False,
        metadata={"help": "Preference only: responses a labeler tied also give pairs, one in each order with "
                          "margin 0, so a reward model learns to score them alike."},
    )
    since: str = field(
        default="", metadata={"help": "Only annotations made from this date (YYYY-MM-DD, UTC) or ISO time on."}
    )
    until: str = field(
        default="", metadata={"help": "Only annotations made up to this date (YYYY-MM-DD, UTC, the whole day) or ISO time."}
    )
    labeler: str = field(default="", metadata={"help": "Only this labeler's annotations (a username)."})
    external: str = field(
        default="",
        metadata={"help": "Labels imported from an external source: empty keeps them, 'exclude' leaves them out, "
                          "'only' keeps only them.", "choices": list(EXTERNAL_MODES)},
    )
    since_last_export: bool = field(
        default=False,
        metadata={"help": "Only annotations made since the project's last complete export in the same format."},
    )

    @classmethod
    def from_mapping(cls, data: Mapping | None, *, strict: bool = False, prefix: str = "") -> ExportFilters:
        """Filters from query parameters, JSON or flags. A bad value is InvalidInput naming its field.

        Keys that are not filters are ignored (an export's query also holds `format`), unless
        strict, where they are an error too (a run's `data` section holds nothing else). `prefix`
        goes before the field named in an error ("data." for a run config).
        """
        data = data or {}
        if not isinstance(data, Mapping):
            raise InvalidInput("The filters must be an object.", field=prefix.rstrip(".") or "filters")
        names = {f.name for f in fields(cls)}
        if strict:
            unknown = sorted(str(key) for key in data if key not in names)
            if unknown:
                raise InvalidInput(
                    f"Unknown filter '{unknown[0]}'; the filters are {', '.join(sorted(names))}.",
                    field=f"{prefix}{unknown[0]}",
                )
        values: dict = {}
        for name in ("exclude_gold", "reviewed_only", "exclude_flagged", "ties", "since_last_export"):
            if name in data:
                values[name] = _boolean(data[name], field=f"{prefix}{name}")
        if "min_competence" in data:
            values["min_competence"] = _competence(data["min_competence"], field=f"{prefix}min_competence")
        if "consensus" in data:
            mode = data["consensus"]
            if mode is None:
                mode = ""
            if not isinstance(mode, str) or mode not in CONSENSUS_MODES:
                raise InvalidInput(
                    "consensus must be empty (every labeler's pairs), 'margin' or 'weight'.",
                    field=f"{prefix}consensus",
                )
            values["consensus"] = mode
        for name in ("since", "until"):
            if data.get(name) not in (None, ""):
                moment = _moment(data[name], field=f"{prefix}{name}")
                text = data[name].strip()
                values[name] = text if len(text) == 10 else moment.isoformat()  # a date stays a whole day
        if values.get("since") and values.get("until") and _moment(values["since"], field="since") >= _end(
            values["until"]
        ):
            raise InvalidInput("since must not be after until.", field=f"{prefix}since")
        if data.get("external") not in (None, ""):
            if data["external"] not in EXTERNAL_MODES:
                raise InvalidInput("external must be empty (keep imported labels), 'exclude' or 'only'.",
                                   field=f"{prefix}external")
            values["external"] = data["external"]
        if data.get("labeler") not in (None, ""):
            labeler = data["labeler"]
            if not isinstance(labeler, str) or len(labeler) > 150:
                raise InvalidInput("labeler is a username of at most 150 characters.", field=f"{prefix}labeler")
            values["labeler"] = labeler.strip()
        return cls(**values)

    def as_dict(self) -> dict:
        """Only the filters that differ from the defaults: {} means "everything that counts"."""
        defaults = ExportFilters()
        return {key: value for key, value in asdict(self).items() if value != getattr(defaults, key)}

    def __bool__(self) -> bool:
        return bool(self.as_dict())

    def annotation_q(self) -> Q:
        """The row filters that a query can apply (all but min_competence, which needs the quality report)."""
        from .models import Annotation, AnnotationFlag

        where = Q()
        if self.exclude_gold:
            where &= Q(task__is_gold=False)
        if self.reviewed_only:
            where &= Q(review_state=Annotation.ReviewState.ACCEPTED) | Q(corrected_review__isnull=False)
        if self.exclude_flagged:
            flagged = Exists(AnnotationFlag.objects.filter(annotation_id=OuterRef("pk")))
            where &= ~flagged | Q(review_state=Annotation.ReviewState.ACCEPTED)
        if self.since:
            where &= Q(created_at__gte=_moment(self.since, field="since"))
        if self.until:
            where &= Q(created_at__lt=_end(self.until))
        if self.labeler:
            where &= Q(labeler__username=self.labeler)
        if self.external == "exclude":
            where &= Q(labeler__isnull=False)
        elif self.external == "only":
            where &= Q(labeler__isnull=True)
        return where


def _moment(value, *, field: str) -> datetime:
    """A date (its start, UTC) or an ISO time (UTC when it names no zone)."""
    text = value.strip() if isinstance(value, str) else ""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time.min, tzinfo=dt_timezone.utc)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{field.rsplit('.', 1)[-1]} must be a date (YYYY-MM-DD) or an ISO 8601 time.", field=field
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt_timezone.utc)


def moment(value: str) -> datetime:
    """A filter's `since` or `until` text as the moment it starts."""
    return _moment(value, field="since")


def _end(value: str) -> datetime:
    """Where `until` stops (exclusive): the next day's start for a date, just after the time for a time."""
    moment = _moment(value, field="until")
    return moment + (timedelta(days=1) if len(value) == 10 else timedelta(microseconds=1))


def _boolean(value, *, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise InvalidInput(f"{field.rsplit('.', 1)[-1]} must be true or false.", field=field)


def _competence(value, *, field: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        value = "bad"  # True is not a number here
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise InvalidInput("min_competence must be a number from 0 to 1.", field=field)
    return number


def export_filter_parameters() -> list:
    """The filters as OpenAPI query parameters, their help taken from the fields above."""
    from drf_spectacular.utils import OpenApiParameter

    kinds = {bool: bool, float: float, str: str}
    params = []
    for f in fields(ExportFilters):
        kind = kinds.get(type(f.default), float)
        enum = f.metadata.get("choices")
        params.append(OpenApiParameter(f.name, kind, description=f.metadata["help"], enum=enum, required=False))
    return params
