"""The API's pagination (DRF's DEFAULT_PAGINATION_CLASS): ?limit= and ?offset=, within bounds.

DRF's LimitOffsetPagination takes ?limit=10**30 as asked and sends it to the database as
LIMIT, which a bigint cannot hold (a 500), or, short of that, reads a whole table into one
response. Here a limit above MAX_LIMIT is clamped to it, and an offset is clamped to the largest
the database takes; past the last row the page is simply empty. A number too long for int() to
parse is clamped the same way, not mistaken for no number at all.
"""

from rest_framework.pagination import LimitOffsetPagination

from annotation.ids import MAX_ID

MAX_LIMIT = 1000  # rows in one page, whatever ?limit= asks for (the default page is PAGE_SIZE)


class ClampedLimitOffsetPagination(LimitOffsetPagination):
    max_limit = MAX_LIMIT
    max_offset = MAX_ID - MAX_LIMIT  # offset + limit still fits in a bigint

    def get_limit(self, request) -> int:
        if _too_long(request.query_params.get(self.limit_query_param)):
            return self.max_limit
        return super().get_limit(request)

    def get_offset(self, request) -> int:
        if _too_long(request.query_params.get(self.offset_query_param)):
            return self.max_offset
        return min(super().get_offset(request), self.max_offset)


def _too_long(value) -> bool:
    """A number of more digits than any bigint, which int() may refuse outright (over 4300 digits)."""
    return isinstance(value, str) and value.isascii() and value.isdigit() and len(value) > 19
