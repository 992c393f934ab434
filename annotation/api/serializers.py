from django.db.models import Q
from rest_framework import serializers

from annotation import gold
from annotation import overlap as overlap_rules
from annotation.models import Annotation, Membership, Project, Task, model_version_model
from annotation.reviews.sampling import REVIEW_RATE_HELP, REVIEW_RATE_MAX, REVIEW_RATE_MIN


class ProjectSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = [
            "id", "name", "slug", "guidelines", "overlap", "lease_seconds", "reward_model", "review_rate", "role",
            "created_at", "gold_rate", "gold_training_mode", "qualification_tasks", "qualification_min_accuracy",
            "dynamic_overlap", "max_overlap", "agreement_threshold",
        ]

    def get_role(self, project) -> str | None:
        roles = self.context.get("roles", {})
        return roles.get(project.pk)


class ProjectCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=200, required=False, allow_blank=True)
    guidelines = serializers.CharField(required=False, allow_blank=True)
    overlap = serializers.IntegerField(min_value=1, max_value=100, required=False)
    lease_seconds = serializers.IntegerField(min_value=10, max_value=7 * 24 * 3600, required=False)


class ProjectUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    guidelines = serializers.CharField(required=False, allow_blank=True)
    overlap = serializers.IntegerField(min_value=1, max_value=100, required=False)
    lease_seconds = serializers.IntegerField(min_value=10, max_value=7 * 24 * 3600, required=False)
    reward_model = serializers.PrimaryKeyRelatedField(
        queryset=model_version_model().objects.none(), allow_null=True, required=False,
        help_text="A reward model version of the project (or null): active sampling scores comparisons with it.",
    )
    review_rate = serializers.FloatField(
        min_value=REVIEW_RATE_MIN, max_value=REVIEW_RATE_MAX, required=False, help_text=REVIEW_RATE_HELP
    )
    # Gold tasks and qualification; the bounds are gold.py's.
    gold_rate = serializers.FloatField(
        min_value=0, max_value=gold.GOLD_RATE_MAX, required=False,
        help_text="Share of claims that serve a gold task instead of a real one (0.1: one in ten).",
    )
    gold_training_mode = serializers.BooleanField(
        required=False, help_text="After a gold task, show the labeler the expected answer and its explanation."
    )
    qualification_tasks = serializers.IntegerField(
        min_value=0, max_value=gold.QUALIFICATION_TASKS_MAX, required=False,
        help_text="Gold comparisons a new labeler answers before real work (0: no qualification).",
    )
    qualification_min_accuracy = serializers.FloatField(
        min_value=0, max_value=gold.ACCURACY_MAX, required=False,
        help_text="The share of those answers that must match the gold answer to qualify.",
    )
    # Dynamic overlap; the bounds are overlap.py's (max_overlap >= overlap is the service's check).
    dynamic_overlap = serializers.BooleanField(required=False, help_text=overlap_rules.DYNAMIC_OVERLAP_HELP)
    max_overlap = serializers.IntegerField(
        min_value=1, max_value=overlap_rules.MAX_OVERLAP_CAP, required=False,
        help_text=overlap_rules.MAX_OVERLAP_HELP,
    )
    agreement_threshold = serializers.FloatField(
        min_value=overlap_rules.THRESHOLD_MIN, max_value=overlap_rules.THRESHOLD_MAX, required=False,
        help_text=overlap_rules.THRESHOLD_HELP,
    )

    def __init__(self, *args, project=None, **kwargs):
        super().__init__(*args, **kwargs)
        # Only the project's own and the global models exist here: another project's id reads as missing.
        if project is not None:
            self.fields["reward_model"].queryset = model_version_model().objects.filter(
                Q(project__isnull=True) | Q(project=project)
            )


class MembershipSerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=Membership.Role.choices)


class TaskResponseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()


class TaskSerializer(serializers.Serializer):
    """Documents the payload that selectors.task_payload builds."""

    id = serializers.IntegerField()
    project = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Task.Kind.choices)
    messages = serializers.ListField(child=serializers.DictField())
    responses = TaskResponseSerializer(many=True)
    lease_expires_at = serializers.DateTimeField(allow_null=True)
    lease_seconds = serializers.IntegerField()
    server_time = serializers.DateTimeField()


class AnnotationInputSerializer(serializers.Serializer):
    """Documents the submit body; the service validates the payload by the task's kind."""

    client_id = serializers.UUIDField()
    time_spent_ms = serializers.IntegerField(required=False, min_value=0)
    text = serializers.CharField(required=False, help_text="demonstration: the written answer")
    ranking = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()),
        required=False,
        help_text="comparison: groups of response ids, best first; a group of several is a tie",
    )
    strength = serializers.ChoiceField(choices=Annotation.Strength.choices, required=False)
    flags = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)
    all_bad = serializers.BooleanField(required=False)
    rationale = serializers.CharField(required=False, allow_blank=True)
    edit = serializers.DictField(
        required=False,
        help_text='comparison, optional: {"response_id": a top-ranked response, "text": its rewrite}; stored as a '
        "demonstration and as a preference pair of the edit over the original",
    )


class SkipInputSerializer(serializers.Serializer):
    reason = serializers.CharField()
    client_id = serializers.UUIDField(required=False)
    time_spent_ms = serializers.IntegerField(required=False, min_value=0)


class AnnotationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Annotation
        fields = [
            "id", "task", "client_id", "kind", "text", "ranking", "strength", "flags", "all_bad", "rationale",
            "edited_response", "reason", "time_spent_ms", "lease_expired", "created_at",
        ]


# Built once: a ModelSerializer builds its fields again for every instance, which cost as much as
# a query on each submit. to_representation only reads the fields, so threads can share it.
_ANNOTATION_OUT = AnnotationSerializer()


def annotation_representation(annotation) -> dict:
    """AnnotationSerializer(annotation).data, without building the serializer's fields per call."""
    return _ANNOTATION_OUT.to_representation(annotation)


class ExportFilterCountsSerializer(serializers.Serializer):
    exclude_gold = serializers.IntegerField(allow_null=True)
    reviewed_only = serializers.IntegerField(allow_null=True)
    exclude_flagged = serializers.IntegerField(allow_null=True)
    min_competence = serializers.IntegerField(allow_null=True, help_text="Null when no threshold was given.")
    consensus = serializers.IntegerField(allow_null=True, help_text="Consensus pairs; null outside preference.")


class ExportCountsSerializer(serializers.Serializer):
    """Lines (pairs for preference) an export keeps: in all, under each filter alone, and as chosen."""

    format = serializers.CharField()
    all = serializers.IntegerField(help_text="Without any filter (rejected annotations are always out).")
    each = ExportFilterCountsSerializer(help_text="Under each filter on its own.")
    selected = serializers.IntegerField(allow_null=True, help_text="Under the filters given, together.")
    filters = serializers.DictField(help_text="The filters given, defaults left out.")
    errors = serializers.DictField(child=serializers.CharField(), help_text="Why a count is null, by filter.")
