"""The API's parsers: one for JSON (DRF's default, and every view that takes only JSON), and forms.

DRF's JSONParser reads the whole stream, whatever its size, lets RecursionError from a deeply
nested body escape as a 500, and hands NUL characters and lone surrogates on to a database that
cannot store them (another 500, or a JSON renderer that cannot encode its own error). This one
reads at most the body limit (413 past it, naming the limit), turns nesting past MAX_JSON_DEPTH
into a 400, and answers unstorable text with a 400 that names the field's path.

The form parsers add the same text check to DRF's. A POSTed form was checked already by the input
middleware (config/middleware.py), which reads the raw bytes; these cover PUT and PATCH, whose
bodies Django leaves to DRF.
"""

import json

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser

from annotation.errors import InvalidInput, PayloadTooLarge
from annotation.input_checks import MAX_JSON_DEPTH, json_problem, json_text_is_plain, printable, text_problem


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def body_limit() -> int | None:
    """The largest request body read into memory: Django's DATA_UPLOAD_MAX_MEMORY_SIZE (None: no limit)."""
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


class JSONBodyParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        limit = body_limit()
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise PayloadTooLarge(what="The request body", limit=limit)
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error - the body is not valid {encoding} at byte {exc.start + 1}.") from None
        try:
            data = json.loads(text, parse_constant=_reject_constant if self.strict else None)
        except RecursionError:
            message = f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep."
            raise InvalidInput(message, field="body") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        problem = None if json_text_is_plain(text) else json_problem(data)
        if problem is not None:
            raise InvalidInput(problem.message, field=problem.field)
        return data


def _form_checked(data):
    """The parsed form (a QueryDict, or DataAndFiles), or InvalidInput naming the first unstorable field."""
    fields = getattr(data, "data", data)
    for name, values in fields.lists():
        for text in (name, *values):
            reason = text_problem(text) if isinstance(text, str) else None
            if reason:
                raise InvalidInput(f"{printable(name)} {reason}.", field=printable(name))
    return data


class FormBodyParser(FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        return _form_checked(super().parse(stream, media_type, parser_context))


class MultiPartBodyParser(MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        return _form_checked(super().parse(stream, media_type, parser_context))
