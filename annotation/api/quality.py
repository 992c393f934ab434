"""Label quality API: the project's last quality report, and a request to recompute it.

Both need the dashboard right (annotation/roles.py). Reading costs one query (the membership) and
one cache read: the report is computed by a Celery task (annotation/reliability/), never here.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import AnnotationFlag
from annotation.reliability import store
from annotation.roles import Action

from .permissions import project_for


class QualityFlagSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=AnnotationFlag.Reason.choices)
    p_value = serializers.FloatField(allow_null=True, help_text="Of the labeler's test; null for the fast habit.")
    detail = serializers.DictField(help_text="The evidence: counts, shares, times, p-values.")
    annotations = serializers.IntegerField(help_text="Annotations flagged for it by this run.")


class QualityLabelerSerializer(serializers.Serializer):
    labeler_id = serializers.IntegerField()
    username = serializers.CharField()
    judgments = serializers.IntegerField(help_text="Comparison judgments read.")
    dawid_skene = serializers.FloatField(allow_null=True, help_text="P(their answer is the true one), Dawid-Skene.")
    mace = serializers.FloatField(allow_null=True, help_text="P(they know rather than guess), MACE.")
    gold_judgments = serializers.IntegerField(help_text="Judgments of tasks with a known answer.")
    gold_agreeing = serializers.IntegerField(help_text="Of those, how many chose the known best response.")
    disagreement = serializers.FloatField(allow_null=True, help_text="Mean share of co-labelers who chose otherwise.")
    expected_disagreement = serializers.FloatField(allow_null=True, help_text="What the co-labelers' record predicts.")
    flags = QualityFlagSerializer(many=True)


class QualityAlphaSerializer(serializers.Serializer):
    kind = serializers.CharField()
    label = serializers.CharField()
    level = serializers.ChoiceField(choices=["nominal", "ordinal", "interval", "ratio"])
    alpha = serializers.FloatField(allow_null=True, help_text="Krippendorff's alpha; null when undefined (see note).")
    units = serializers.IntegerField(help_text="Units judged two or more times.")
    values = serializers.IntegerField()
    note = serializers.CharField(allow_blank=True)


class QualityPairSerializer(serializers.Serializer):
    a = serializers.IntegerField(help_text="Labeler id (a < b).")
    b = serializers.IntegerField()
    shared = serializers.IntegerField(help_text="Tasks both judged.")
    agreeing = serializers.IntegerField(help_text="Of those, how many with the same best response.")
    rate = serializers.FloatField()


class QualityTimeSerializer(serializers.Serializer):
    kind = serializers.CharField()
    timed = serializers.IntegerField(help_text="Submitted annotations with a measured time.")
    median_ms = serializers.IntegerField()
    fast_below_ms = serializers.IntegerField(allow_null=True, help_text="Null until enough work is timed.")


class QualityModelsSerializer(serializers.Serializer):
    items = serializers.IntegerField(help_text="Tasks the crowd models saw.")
    judgments = serializers.IntegerField()
    known_tasks = serializers.IntegerField(help_text="Tasks with a known answer (gold).")


class QualityTestsSerializer(serializers.Serializer):
    position_tested = serializers.IntegerField(help_text="Labelers with enough judgments for the position test.")
    outlier_tested = serializers.IntegerField(help_text="Labelers with enough shared tasks for the outlier test.")


class QualityReportSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    project_id = serializers.IntegerField()
    data_as_of = serializers.DateTimeField(help_text="Work created after this is not in the report.")
    computed_at = serializers.DateTimeField()
    seconds = serializers.FloatField(help_text="How long the run took.")
    judgments = serializers.IntegerField(help_text="Comparison judgments read.")
    tasks = serializers.IntegerField()
    truncated = serializers.BooleanField(help_text="True when older tasks were left out (max_judgments).")
    max_judgments = serializers.IntegerField()
    choice_labels = serializers.ListField(child=serializers.CharField(), help_text='Best-response labels: "1", "1=2", …')
    models = QualityModelsSerializer()
    labelers = QualityLabelerSerializer(many=True)
    alpha = QualityAlphaSerializer(many=True)
    pairs = QualityPairSerializer(many=True)
    times = QualityTimeSerializer(many=True)
    tests = QualityTestsSerializer()
    flag_counts = serializers.DictField(child=serializers.IntegerField(), help_text="Flagged annotations per reason.")


class QualitySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ready", "missing"], help_text="missing: never computed yet.")
    queued_at = serializers.DateTimeField(allow_null=True, help_text="When a recompute was queued, if one is.")
    report = QualityReportSerializer(allow_null=True)


class QualityRecomputeSerializer(serializers.Serializer):
    queued = serializers.BooleanField(help_text="False when a recompute was queued already.")
    queued_at = serializers.DateTimeField(allow_null=True)


class ProjectQualityApi(APIView):
    @extend_schema(responses=QualitySerializer)
    def get(self, request, project_id: int):
        """The last label quality report: competence per labeler, alpha per kind, pair agreement, flags.

        Computed every few minutes by a background task for projects with new work (docs/quality.md).
        """
        project_for(request, project_id, Action.DASHBOARD)
        found = store.quality_status(project_id=project_id)
        body = {
            "status": "ready" if found["report"] else "missing",
            "queued_at": found["queued_at"],
            "report": found["report"],
        }
        return Response(QualitySerializer(body).data)


class ProjectQualityRecomputeApi(APIView):
    @extend_schema(request=None, responses={202: QualityRecomputeSerializer})
    def post(self, request, project_id: int):
        """Queue a recompute of the quality report now (once: a second request while queued does nothing)."""
        project_for(request, project_id, Action.DASHBOARD)
        queued = store.quality_recompute_request(project_id=project_id)
        body = {"queued": queued, "queued_at": store.quality_status(project_id=project_id)["queued_at"]}
        return Response(QualityRecomputeSerializer(body).data, status=status.HTTP_202_ACCEPTED)
