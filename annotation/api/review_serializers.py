"""Documents of the review API's bodies (annotation/reviews/ builds and checks them)."""

from rest_framework import serializers

from annotation.models import Annotation, ReviewItem, Task
from annotation.reviews.selectors import prompt_excerpt
from annotation.reviews.services import VERDICTS

from .serializers import AnnotationInputSerializer, TaskResponseSerializer


class ReviewResponseSerializer(TaskResponseSerializer):
    place = serializers.IntegerField(allow_null=True, help_text="Its place in the labeler's ranking, 1 = best")
    tied = serializers.BooleanField(help_text="It shares its place with another response")
    flags = serializers.ListField(child=serializers.CharField(), help_text="The labeler's flags on it")


class ReviewTaskSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Task.Kind.choices)
    messages = serializers.ListField(child=serializers.DictField())
    responses = ReviewResponseSerializer(many=True, help_text="In the display order the labeler saw")


class ReviewedAnnotationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Annotation.Kind.choices)
    text = serializers.CharField(allow_blank=True)
    ranking = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()))
    strength = serializers.CharField(allow_blank=True)
    flags = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    all_bad = serializers.BooleanField()
    rationale = serializers.CharField(allow_blank=True)
    edit = serializers.DictField(allow_null=True)
    time_spent_ms = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class ReviewSerializer(serializers.Serializer):
    """Documents what reviews.selectors.review_payload builds: an annotation to review, with its task."""

    id = serializers.IntegerField()
    project = serializers.IntegerField()
    reason = serializers.CharField(help_text='"sample", or what flagged the annotation')
    lease_expires_at = serializers.DateTimeField(allow_null=True)
    task = ReviewTaskSerializer()
    annotation = ReviewedAnnotationSerializer()


class CorrectionSerializer(AnnotationInputSerializer):
    """The reviewer's fix: the body of a submit of the task's kind, without its client_id."""

    client_id = None
    time_spent_ms = None


class VerdictInputSerializer(serializers.Serializer):
    """Documents the verdict's body; the service checks it."""

    client_id = serializers.UUIDField(help_text="Made by the client: a repeat returns the stored review")
    verdict = serializers.ChoiceField(choices=list(VERDICTS))
    comment = serializers.CharField(
        required=False, allow_blank=True, help_text="Shown to the labeler; required to reject"
    )
    correction = CorrectionSerializer(required=False, help_text="Only with verdict=corrected")
    time_spent_ms = serializers.IntegerField(required=False, min_value=0)


class ReviewResultSerializer(serializers.ModelSerializer):
    """A decided review: the reviewer's copy, and (without the reviewer) the labeler's."""

    task = serializers.IntegerField(source="task_id")
    annotation = serializers.IntegerField(source="annotation_id")
    correction = serializers.IntegerField(source="correction_id", allow_null=True)

    class Meta:
        model = ReviewItem
        fields = ["id", "project", "task", "annotation", "reason", "status", "verdict", "comment", "correction",
                  "decided_at"]


class MyReviewSerializer(ReviewResultSerializer):
    """A review of the caller's own work, with the task it was on."""

    prompt = serializers.SerializerMethodField()

    class Meta(ReviewResultSerializer.Meta):
        fields = ReviewResultSerializer.Meta.fields + ["prompt"]

    def get_prompt(self, item) -> str:
        return prompt_excerpt(item.task.prompt.messages)
