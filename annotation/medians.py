"""Medians of time spent: PostgreSQL's exact PERCENTILE_CONT in the GROUP BY pass, or a window query elsewhere."""

from __future__ import annotations

from django.db import connection
from django.db.models import Aggregate, Count, F, FloatField, Q, Window
from django.db.models.functions import RowNumber


class Median(Aggregate):
    """PostgreSQL's exact median, computed in the same GROUP BY pass as the counts."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def median_in_aggregate() -> bool:
    return connection.vendor == "postgresql"


def medians_by_window(*, queryset, group: str) -> dict:
    """The median time_spent_ms per value of `group`, for databases without PERCENTILE_CONT.

    The database numbers each group's rows by time and keeps the middle one (odd count) or two
    (even count); Python only averages those.
    """
    middle = (
        queryset.annotate(
            _rn=Window(RowNumber(), partition_by=[F(group)], order_by=[F("time_spent_ms").asc(), F("id").asc()]),
            _n=Window(Count("id"), partition_by=[F(group)]),
        )
        .filter(Q(_rn=(F("_n") + 1) / 2) | Q(_rn=(F("_n") + 2) / 2))
        .values_list(group, "time_spent_ms")
    )
    values: dict = {}
    for key, ms in middle:
        values.setdefault(key, []).append(ms)
    return {key: sum(ms) / len(ms) for key, ms in values.items()}
