"""Object ids as the database stores them: positive 64-bit integers.

Every id that comes from outside (a URL, a query parameter, a JSON body, a form) passes through
`as_id` before it reaches a query. A value the database could not hold is no id at all, so it
finds nothing (a 404 or a 400 that names the field) instead of an integer-overflow 500.
"""

MAX_ID = 2**63 - 1  # PostgreSQL bigint; SQLite's INTEGER has the same range
ID_PATTERN = r"[0-9]{1,19}"  # the URL converter's regex: at most 19 digits, checked against MAX_ID


def as_id(value) -> int | None:
    """The value as a database id, or None when it is not one (not an integer, < 1, or > MAX_ID)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value.isascii() or not value.isdigit() or len(value) > 19:
            return None
    elif not isinstance(value, int):
        return None
    number = int(value)
    return number if 1 <= number <= MAX_ID else None
