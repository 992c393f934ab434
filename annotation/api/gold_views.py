"""Gold accuracy and qualification API. Each view checks the role, calls one selector or service."""

from django.contrib.auth import get_user_model
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import gold_stats, qualification
from annotation.roles import Action

from . import gold_serializers
from .permissions import project_for


class ProjectGoldApi(APIView):
    @extend_schema(responses=gold_serializers.GoldSummarySerializer)
    def get(self, request, project_id: int):
        """Gold settings, gold task counts, and each labeler's gold accuracy with its 95% Wilson interval.

        For the project's admins and engineers (the dashboard's roles). Cached like the dashboard.
        """
        project = project_for(request, project_id, Action.DASHBOARD)
        summary = gold_stats.gold_summary_cached(project=project)
        return Response(gold_serializers.GoldSummarySerializer(summary).data)


class QualificationApi(APIView):
    @extend_schema(responses=gold_serializers.QualificationStateSerializer)
    def get(self, request, project_id: int):
        """The caller's own qualification state in the project, with the message the labeling page shows."""
        project = project_for(request, project_id, Action.LABEL)
        return Response(qualification.qualification_state(project=project, labeler=request.user))


class QualificationReadmitApi(APIView):
    @extend_schema(request=None, responses=gold_serializers.GoldLabelerSerializer)
    def post(self, request, project_id: int, user_id: int):
        """Re-admit a held-out (or still qualifying) member: they are qualified and may do real work.

        Project admins only. Records who re-admitted them and when.
        """
        project = project_for(request, project_id, Action.MANAGE)
        labeler = get_user_model().objects.filter(pk=user_id, memberships__project=project).first()
        if labeler is None:
            raise Http404("No such member.")
        qualification.labeler_readmit(project=project, labeler=labeler, by=request.user)
        row = gold_stats.gold_labeler_row(project=project, labeler_id=labeler.pk)
        return Response(gold_serializers.GoldLabelerSerializer(row).data)
