"""Input that no view should ever see: oversized bodies, and unstorable text in forms and query strings.

One place for every route, API and pages alike, before any view (or the CSRF check) reads the body:

- A body over DATA_UPLOAD_MAX_MEMORY_SIZE is refused with 413 from its Content-Length, before a
  byte of it is read. A multipart upload to a view marked `accepts_import_file` may instead be as
  large as IMPORT_MAX_BYTES (the view checks the file itself). Where there is no Content-Length,
  Django raises RequestDataTooBig while reading; that becomes the same 413 here, not Django's bare
  "Bad Request" page.
- A query string or a form body holding a NUL character or bytes that are not UTF-8 (how a lone
  surrogate arrives: %ED%A0%80) is refused with 400 naming the parameter. Django would have
  decoded the bytes to U+FFFD silently, or passed the NUL on to PostgreSQL, which refuses it (500).
  The raw bytes are checked, because by the time Django has decoded them the evidence is gone.
- A header holding a NUL is refused the same way (gunicorn refuses it before us; other servers may not).
- A form Django cannot parse (a multipart body without a boundary, too many fields, a body cut
  short) is a 400.

/api/ gets JSON ({"detail", "field"} or {"detail", "limit_bytes"}); pages get a readable page.
JSON bodies are the API parser's business (annotation/api/parsers.py).
"""

from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import JsonResponse, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render
from django.urls import Resolver404, resolve

from annotation.errors import PayloadTooLarge
from annotation.input_checks import Problem, printable, text_problem

# Room around an import file for the multipart envelope (boundaries, part headers, other fields).
MULTIPART_SLACK_BYTES = 1024 * 1024
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"


class InputGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self._refusal(request) or self.get_response(request)

    def process_exception(self, request, exception):
        """A body without a Content-Length that outgrew the limit while a view read it."""
        if isinstance(exception, RequestDataTooBig):
            return _too_large(request, _body_too_large())
        return None

    def _refusal(self, request):
        too_large = _size_refusal(request)
        if too_large is not None:
            return _too_large(request, too_large)
        problem = _header_problem(request) or _urlencoded_problem(
            request.META.get("QUERY_STRING", "").encode("iso-8859-1", "replace")
        )
        if problem is None and request.content_type in (FORM, MULTIPART):
            try:
                problem = _body_problem(request)
            except RequestDataTooBig:
                return _too_large(request, _body_too_large())
            except (MultiPartParserError, SuspiciousOperation, UnreadablePostError) as exc:
                problem = Problem("body", f"The form could not be read: {printable(str(exc))}.")
        return None if problem is None else _bad_request(request, problem)


def _size_refusal(request) -> PayloadTooLarge | None:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None  # Django reads such a body as empty
    if limit is None or length <= limit:
        return None
    if request.content_type == MULTIPART and _takes_import_file(request):
        if length <= settings.IMPORT_MAX_BYTES + MULTIPART_SLACK_BYTES:
            return None
        return PayloadTooLarge(what="The import file", limit=settings.IMPORT_MAX_BYTES, field="file")
    return _body_too_large()


def _body_too_large() -> PayloadTooLarge:
    return PayloadTooLarge(what="The request body", limit=settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


def _takes_import_file(request) -> bool:
    try:
        view = resolve(request.path_info).func
    except Resolver404:
        return False
    view_class = getattr(view, "view_class", None)  # a DRF APIView's as_view() points at its class
    return bool(getattr(view, "accepts_import_file", False) or getattr(view_class, "accepts_import_file", False))


def _body_problem(request) -> Problem | None:
    if request.content_type == FORM:
        return _urlencoded_problem(request.body, request.encoding or settings.DEFAULT_CHARSET)
    if request.method != "POST":
        return None  # Django parses multipart only for POST; the API's own parsers check the rest
    for name, values in request.POST.lists():  # parses the upload, now, within the size checked above
        problem = _text_problem(name, values)
        if problem is not None:
            return problem
    return None


def _header_problem(request) -> Problem | None:
    """A NUL in a header (an Authorization token reaches a query). gunicorn refuses these; not every server does."""
    for key, value in request.META.items():
        if key.startswith("HTTP_") and isinstance(value, str) and "\x00" in value:
            name = key[5:].replace("_", "-").title()
            return Problem(name, f"The {name} header contains a NUL character.")
    return None


def _urlencoded_problem(raw: bytes, encoding: str = "utf-8") -> Problem | None:
    """The first parameter of a query string or form body that holds a NUL or bytes that are not text."""
    for pair in raw.split(b"&"):
        if not pair:
            continue
        raw_name, _, raw_value = pair.partition(b"=")
        name_bytes = unquote_to_bytes(raw_name.replace(b"+", b" "))
        value_bytes = unquote_to_bytes(raw_value.replace(b"+", b" "))
        try:
            name = name_bytes.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            field = name_bytes.decode(encoding, "backslashreplace") if encoding else repr(name_bytes)
            return Problem(field, f"The parameter name {field} is not valid {encoding} (a lone surrogate?).")
        try:
            value = value_bytes.decode(encoding)
        except UnicodeDecodeError:
            return Problem(printable(name), f"{printable(name)} is not valid {encoding} (a lone surrogate?).")
        problem = _text_problem(name, [value])
        if problem is not None:
            return problem
    return None


def _text_problem(name: str, values: list) -> Problem | None:
    field = printable(name)
    reason = text_problem(name)
    if reason:
        return Problem(field, f"The parameter name {field} {reason}.")
    for value in values:
        reason = text_problem(value) if isinstance(value, str) else None
        if reason:
            return Problem(field, f"{field} {reason}.")
    return None


def _is_api(request) -> bool:
    return request.path_info.startswith("/api/")


def _bad_request(request, problem: Problem):
    if _is_api(request):
        return JsonResponse({"detail": problem.message, "field": problem.field}, status=400)
    return _page(request, 400, "This request cannot be accepted", problem.message)


def _too_large(request, error: PayloadTooLarge):
    if _is_api(request):
        return JsonResponse(error.as_dict(), status=error.status_code)
    return _page(request, error.status_code, "Too large", error.message)


def _page(request, status: int, title: str, message: str):
    return render(request, "input_error.html", {"title": title, "message": message}, status=status)
