from rest_framework.response import Response
from rest_framework.views import exception_handler

from annotation.errors import ServiceError


def api_exception_handler(exc, context):
    """Service errors become 4xx bodies that name the field or the lines at fault."""
    if isinstance(exc, ServiceError):
        return Response(exc.as_dict(), status=exc.status_code)
    return exception_handler(exc, context)
