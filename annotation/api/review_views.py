"""Review API: claim the next review, give a verdict, and (for labelers) read the reviews of one's work."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from annotation.reviews import selectors, services
from annotation.roles import Action, project_access

from . import review_serializers as serializers
from .parsers import JSONBodyParser
from .permissions import project_for


class ReviewNextApi(APIView):
    @extend_schema(request=None, responses={200: serializers.ReviewSerializer, 204: None})
    def post(self, request, project_id: int):
        """Claim the next annotation to review, or get back the one already leased. 204 when none is waiting.

        Reviewers and admins only. A reviewer never gets their own work.
        """
        project = project_for(request, project_id, Action.REVIEW)
        item = services.review_claim_next(project=project, reviewer=request.user)
        if item is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(selectors.review_payload(item=item))


class ReviewVerdictApi(APIView):
    parser_classes = [JSONBodyParser]

    @extend_schema(request=serializers.VerdictInputSerializer,
                   responses={201: serializers.ReviewResultSerializer, 200: serializers.ReviewResultSerializer})
    def post(self, request, review_id: int):
        """Accept, reject (with a comment) or correct the annotation. Idempotent on client_id (a repeat is a 200).

        A rejection takes the annotation out of the counts and reopens its task for one more label; a
        correction is stored as your own annotation of the task and counts in place of the original.
        """
        item = selectors.review_item_get(item_id=review_id)
        project_access(user=request.user, project_id=item.project_id, action=Action.REVIEW)
        data = request.data if isinstance(request.data, dict) else {}
        item, created = services.review_decide(
            item_id=item.pk,
            reviewer=request.user,
            client_id=data.get("client_id"),
            verdict=data.get("verdict"),
            comment=data.get("comment", ""),
            correction=data.get("correction"),
            time_spent_ms=data.get("time_spent_ms", 0),
        )
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(serializers.ReviewResultSerializer(item).data, status=code)


class MyReviewsApi(APIView):
    pagination_class = api_settings.DEFAULT_PAGINATION_CLASS

    @extend_schema(responses=serializers.MyReviewSerializer(many=True))
    def get(self, request, project_id: int):
        """The reviews of your own annotations in the project, newest first: the verdict and the reviewer's comment."""
        project = project_for(request, project_id, Action.LABEL)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            selectors.reviews_of_labeler(labeler=request.user, project=project), request, view=self
        )
        return paginator.get_paginated_response(serializers.MyReviewSerializer(page, many=True).data)
