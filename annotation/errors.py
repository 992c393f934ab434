"""Errors that services raise. The API turns each into a 4xx that names the field or line."""


class ServiceError(Exception):
    status_code = 400

    def __init__(
        self, message: str, *, field: str | None = None, details: list | None = None, extra: dict | None = None
    ):
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details or []
        self.extra = extra or {}  # more keys of the body, such as how many line errors were not listed

    def as_dict(self) -> dict:
        body: dict = {"detail": self.message}
        if self.field:
            body["field"] = self.field
        if self.details:
            body["errors"] = self.details
        return {**body, **self.extra}


class InvalidInput(ServiceError):
    status_code = 400


class Conflict(ServiceError):
    status_code = 409


class NotQualified(ServiceError):
    """The labeler may not take work in the project: held out, or still qualifying (annotation/qualification.py)."""

    status_code = 403


class PayloadTooLarge(ServiceError):
    """A body or an upload over its size limit. The answer names the limit, in bytes and in words."""

    status_code = 413

    def __init__(self, *, what: str, limit: int, field: str | None = None):
        words = size_words(limit)
        exact = "" if words == f"{limit} bytes" else f" ({limit} bytes)"
        message = f"{what} is larger than the limit of {words}{exact}."
        super().__init__(message, field=field, extra={"limit_bytes": limit})
        self.limit = limit


def size_words(size: int) -> str:
    """2097152 -> "2 MiB"; sizes that are not whole units keep one decimal."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            amount = size / scale
            return f"{amount:.0f} {unit}" if amount == int(amount) else f"{amount:.1f} {unit}"
    return f"{size} bytes"
