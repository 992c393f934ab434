"""Errors that services raise. The API turns each into a 4xx that names the field or line."""


class ServiceError(Exception):
    status_code = 400

    def __init__(self, message: str, *, field: str | None = None, details: list | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details or []

    def as_dict(self) -> dict:
        body: dict = {"detail": self.message}
        if self.field:
            body["field"] = self.field
        if self.details:
            body["errors"] = self.details
        return body


class InvalidInput(ServiceError):
    status_code = 400


class Conflict(ServiceError):
    status_code = 409
