"""The labeler's own work: the list behind the "My work" page, and undo of the last submit."""

from django.http import Http404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from annotation import my_work, selectors, undo
from annotation.ids import as_id
from annotation.models import Annotation, Task


class MyWorkApi(APIView):
    pagination_class = api_settings.DEFAULT_PAGINATION_CLASS

    @extend_schema(
        parameters=[
            OpenApiParameter("kind", str, enum=list(my_work.KINDS)),
            OpenApiParameter("review", str, enum=list(my_work.REVIEW_FILTERS)),
            OpenApiParameter("q", str, description="Search the prompt and your own text."),
        ],
        responses={200: dict},
    )
    def get(self, request, project_id: int):
        """Your own annotations in the project, newest first, with review verdicts and comments.

        `undo` names your latest submit while it can still be undone (POST /api/annotations/<id>/undo/).
        """
        project = selectors.membership_get(user=request.user, project_id=project_id).project
        filters = my_work.clean_filters(request.query_params)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            my_work.my_annotations(labeler=request.user, project=project, **filters), request, view=self
        )
        response = paginator.get_paginated_response(my_work.rows_for_page(list(page)))
        response.data["undo"] = undo.undo_offer(project_id=project.pk, labeler=request.user)
        return response


class AnnotationUndoApi(APIView):
    @extend_schema(request=None, responses={200: dict, 409: dict})
    def post(self, request, annotation_id: int):
        """Take back your latest submit for a few minutes: the task is leased to you again.

        409 says why when it cannot be undone (reviewed, in a training snapshot, too old, not the latest).
        The answer carries `draft`, the work as the labeling page restores it, and `label_url`.
        """
        pk = as_id(annotation_id)
        mine = pk is not None and Annotation.objects.filter(pk=pk, labeler=request.user).exists()
        if not mine:
            raise Http404("No such annotation of yours.")
        task, draft = undo.annotation_undo(annotation_id=pk, labeler=request.user)
        kind = task.kind if task.kind in Task.Kind.values else Task.Kind.COMPARISON
        return Response({
            "task_id": task.pk,
            "kind": task.kind,
            "draft": draft,
            "label_url": reverse("task-label", args=[task.project_id, kind]),
        })
