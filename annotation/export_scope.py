"""What an export reads: the filters resolved against the project, the rows each format starts from, pseudonyms."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q

from .errors import InvalidInput
from .export_filters import ExportFilters
from .models import ANNOTATION_COUNTS, Annotation, Project
from .reliability.store import labeler_competence

FORMATS = ("sft", "preference", "raw")
PSEUDONYM_CHARS = 16


@dataclass(frozen=True)
class ExportScope:
    """The filters resolved against the project: one Q for the rows, the consensus mode, the competences read."""

    where: Q
    consensus: str
    competence: dict[int, float] | None  # by labeler id, from the last quality report (raw and min_competence)
    ties: bool = False  # preference: tied responses also give pairs (export_pairs.ranking_pairs)


def export_scope(*, project: Project, fmt: str, filters: ExportFilters | None) -> ExportScope:
    """Check the format and the filters (a bad one is InvalidInput naming it) and resolve them into an ExportScope."""
    if fmt not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}.", field="format")
    filters = filters or ExportFilters()
    if filters.consensus and fmt != "preference":
        raise InvalidInput("consensus applies to the preference format only.", field="consensus")
    if filters.ties and fmt != "preference":
        raise InvalidInput("ties applies to the preference format only.", field="ties")
    if filters.ties and filters.consensus:
        raise InvalidInput("ties does not combine with consensus, which gives one pair per comparison.",
                           field="ties")
    needs_competence = fmt == "raw" or filters.min_competence is not None
    competence = labeler_competence(project_id=project.pk) if needs_competence else None
    where = filters.annotation_q()
    if filters.min_competence is not None:
        if competence is None:
            raise InvalidInput(
                "The project has no quality report yet, so no labeler's competence is known: "
                "compute it on the dashboard's quality section first.",
                field="min_competence",
            )
        below = sorted(labeler for labeler, value in competence.items() if value < filters.min_competence)
        if below:
            where &= ~Q(labeler_id__in=below)
    return ExportScope(where=where, consensus=filters.consensus, competence=competence, ties=filters.ties)


def sft_rows() -> Q:
    """The annotations the sft export reads: demonstrations, and comparisons that carry an edit."""
    return Q(kind=Annotation.Kind.DEMONSTRATION) | Q(kind=Annotation.Kind.COMPARISON, edited_response__isnull=False)


def kept_annotations(*, project: Project, scope: ExportScope, where: Q):
    """The project's annotations that count and pass the filters, filtered on annotation.project_id, by id."""
    return Annotation.objects.filter(where, ANNOTATION_COUNTS, scope.where, project_id=project.pk).order_by("id")


def labeler_pseudonym(user_id: int) -> str:
    """A stable id for a labeler that does not reveal who they are (an HMAC keyed by SECRET_KEY)."""
    key = settings.SECRET_KEY.encode("utf-8")
    digest = hmac.new(key, f"feedbackloop-labeler:{user_id}".encode(), hashlib.sha256).hexdigest()
    return digest[:PSEUDONYM_CHARS]
