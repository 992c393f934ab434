"""GET /api/: where everything is, for a person or a script that starts at the root."""

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

# Grouped as the README tells them; {id} stands for an object's id. The schema has the details.
ENDPOINTS = {
    "auth": {"token": "POST /api/auth/token/"},
    "projects": {
        "list or create": "GET|POST /api/projects/",
        "detail or settings": "GET|PATCH /api/projects/{id}/",
        "members": "POST /api/projects/{id}/members/",
        "import": "POST /api/projects/{id}/import/",
        "export": "GET /api/projects/{id}/export/?format=sft|preference|raw",
        "quality": "GET /api/projects/{id}/quality/",
        "gold accuracy": "GET /api/projects/{id}/gold/",
    },
    "labeling": {
        "next task": "POST /api/projects/{id}/next/",
        "task": "GET /api/tasks/{id}/",
        "submit": "POST /api/tasks/{id}/annotations/",
        "skip": "POST /api/tasks/{id}/skip/",
        "my reviews": "GET /api/projects/{id}/reviews/mine/",
    },
    "review": {"next": "POST /api/projects/{id}/reviews/next/", "verdict": "POST /api/reviews/{id}/verdict/"},
    "training": {
        "runs": "GET|POST /api/training-runs/",
        "run": "GET /api/training-runs/{id}/",
        "cancel, resume, retry": "POST /api/training-runs/{id}/cancel|resume|retry/",
        "config fields": "GET /api/training-runs/defaults/{kind}/",
        "models": "GET|POST /api/models/",
        "generate": "POST /api/projects/{id}/generate/",
        "generation jobs": "GET /api/generation-jobs/",
        "evaluations": "GET|POST /api/evaluations/",
        "leaderboard": "GET /api/projects/{id}/leaderboard/",
    },
}


class ApiIndexApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses={200: dict})
    def get(self, request):
        """The API's main endpoints by area, and where its schema and docs are."""
        return Response({
            "schema": request.build_absolute_uri("/api/schema/"),
            "docs": request.build_absolute_uri("/api/docs/"),
            "endpoints": ENDPOINTS,
        })
