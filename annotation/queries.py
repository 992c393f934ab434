"""Query helpers shared by services and selectors."""

from django.db.models import QuerySet


def one_or_none(queryset: QuerySet):
    """The row of a lookup on a unique key, or None.

    `.first()` orders by the primary key: on the labeler API's hot path Django spent measurable
    time compiling that ORDER BY, and PostgreSQL sorting a result of at most one row.
    """
    return next(iter(queryset[:1]), None)
