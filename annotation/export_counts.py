"""How much of an export each quality filter keeps: the numbers the new-run form and the export API show.

One count per filter on its own (so a person sees what each would cost before choosing it), and
one for the filters chosen together. Counts come from exporters.export_count: lines of the
format, pairs for preference, no text read. A filter that cannot apply (a competence threshold
without a quality report, consensus or ties outside preference) gets null and its reason under
`errors`. `ties` is the one option that adds pairs: its count is the pairs with the tied ones.
A count with consensus fits Dawid-Skene in the process that asks (about 2 s for 9,000 judgments
on the development machine, plus crowd-kit's first import).
"""

from __future__ import annotations

from .errors import InvalidInput
from .export_filters import ExportFilters
from .exporters import export_count
from .models import Project

BOOLEAN_FILTERS = ("exclude_gold", "reviewed_only", "exclude_flagged")


def export_counts(*, project: Project, fmt: str, filters: ExportFilters) -> dict:
    """{"format", "all", "each": {filter: count or None}, "selected": count or None, "filters", "errors"}."""
    everything = export_count(project=project, fmt=fmt)  # checks the format first: a 400 naming it
    alone: dict[str, ExportFilters | None] = {name: ExportFilters(**{name: True}) for name in BOOLEAN_FILTERS}
    alone["min_competence"] = (
        ExportFilters(min_competence=filters.min_competence) if filters.min_competence is not None else None
    )
    alone["consensus"] = ExportFilters(consensus=filters.consensus or "margin") if fmt == "preference" else None
    alone["ties"] = ExportFilters(ties=True) if fmt == "preference" else None  # the one that adds pairs
    each: dict[str, int | None] = {}
    errors: dict[str, str] = {}
    for name, one in alone.items():
        each[name] = _count(project=project, fmt=fmt, filters=one, errors=errors, name=name)
    if alone["consensus"] is not None and filters == alone["consensus"]:
        selected = each["consensus"]  # consensus alone was chosen: one Dawid-Skene fit is enough
    else:
        selected = _count(project=project, fmt=fmt, filters=filters, errors=errors, name="selected")
    return {
        "format": fmt, "all": everything, "each": each, "selected": selected,
        "filters": filters.as_dict(), "errors": errors,
    }


def _count(*, project: Project, fmt: str, filters: ExportFilters | None, errors: dict, name: str) -> int | None:
    if filters is None:
        return None
    try:
        return export_count(project=project, fmt=fmt, filters=filters)
    except InvalidInput as error:
        errors.setdefault(error.field or name, error.message)
        return None
