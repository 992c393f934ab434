"""Documents the bodies of the gold and qualification API (annotation/api/gold_views.py)."""

from rest_framework import serializers

from annotation.models import GoldRecord

from .serializers import AnnotationSerializer

_STATUS = GoldRecord.Status.choices


class GoldLabelerSerializer(serializers.Serializer):
    labeler_id = serializers.IntegerField()
    username = serializers.CharField()
    role = serializers.CharField(help_text='The member\'s role; "" once removed from the project.')
    served = serializers.IntegerField(help_text="Gold tasks leased to the labeler.")
    answered = serializers.IntegerField(help_text="Graded gold answers (comparisons).")
    correct = serializers.IntegerField(help_text="Of those, the ones whose top group matched gold's.")
    accuracy = serializers.FloatField(allow_null=True)
    ci_low = serializers.FloatField(allow_null=True, help_text="95% Wilson interval of the accuracy, low end.")
    ci_high = serializers.FloatField(allow_null=True, help_text="95% Wilson interval of the accuracy, high end.")
    qualification = serializers.ChoiceField(choices=_STATUS)
    decided_at = serializers.DateTimeField(allow_null=True)
    readmitted_by = serializers.CharField(allow_null=True)
    readmitted_at = serializers.DateTimeField(allow_null=True)


class GoldTaskCountsSerializer(serializers.Serializer):
    demonstration = serializers.IntegerField()
    comparison = serializers.IntegerField()


class GoldSummarySerializer(serializers.Serializer):
    gold_rate = serializers.FloatField()
    gold_training_mode = serializers.BooleanField()
    qualification_tasks = serializers.IntegerField()
    qualification_min_accuracy = serializers.FloatField()
    gold_tasks = GoldTaskCountsSerializer()
    qualification_short = serializers.BooleanField(
        help_text="Qualification asks for more answers than the project has gold comparisons."
    )
    confidence = serializers.FloatField()
    answered = serializers.IntegerField()
    correct = serializers.IntegerField()
    accuracy = serializers.FloatField(allow_null=True)
    labelers = GoldLabelerSerializer(many=True)
    computed_at = serializers.DateTimeField()


class QualificationStateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=[("off", "No qualification"), *_STATUS])
    tasks = serializers.IntegerField(help_text="Answers the qualification asks for (N).")
    min_accuracy = serializers.FloatField(help_text="The share of them that must match (X).")
    answered = serializers.IntegerField()
    correct = serializers.IntegerField(allow_null=True, help_text="Null until decided.")
    accuracy = serializers.FloatField(allow_null=True, help_text="Null until decided.")
    readmitted = serializers.BooleanField()
    message = serializers.CharField()


class NotQualifiedSerializer(serializers.Serializer):
    """The 403 of a claim the qualification stops."""

    detail = serializers.CharField()
    qualification = QualificationStateSerializer()


class GoldRevealSerializer(serializers.Serializer):
    """Training mode only: the expected answer of the gold task just submitted."""

    kind = serializers.CharField()
    ranking = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()))
    reference = serializers.CharField(allow_blank=True)
    explanation = serializers.CharField(allow_blank=True)
    correct = serializers.BooleanField(allow_null=True)


class AnnotationSubmitOutSerializer(AnnotationSerializer):
    """The stored annotation; in a project's training mode a gold task's also carries `gold`."""

    gold = GoldRevealSerializer(required=False, read_only=True)

    class Meta(AnnotationSerializer.Meta):
        fields = [*AnnotationSerializer.Meta.fields, "gold"]
