from rest_framework import serializers

from training.models import DatasetSnapshot, ModelVersion, TrainingRun

from . import config_schema


class ModelVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = ["id", "name", "kind", "path", "source", "parent", "project", "produced_by", "metrics", "created_at"]


class ModelRegisterSerializer(serializers.Serializer):
    """Documents the register body; the service checks the values and names the field at fault."""

    name = serializers.CharField()
    kind = serializers.CharField(help_text="base, sft, reward or policy")
    path = serializers.CharField(
        help_text="A hub id (owner/name), or an absolute directory under one of the operator's model roots "
        "(FEEDBACKLOOP_MODEL_ROOTS). Run outputs are registered by the platform itself."
    )
    parent = serializers.IntegerField(required=False, allow_null=True)
    project = serializers.IntegerField(
        required=False, allow_null=True,
        help_text="A project where you may train; leave it out to register a global base model (superusers).",
    )


class SnapshotSerializer(serializers.ModelSerializer):
    class Meta:
        model = DatasetSnapshot
        fields = ["id", "format", "path", "sha256", "row_count", "filters", "created_at"]


class TrainingRunStartSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="sft, reward, dpo or rlhf")
    project = serializers.IntegerField()
    base_model = serializers.JSONField(help_text="Model version id.")
    reward_model = serializers.JSONField(required=False, allow_null=True, help_text="Model version id (rlhf).")
    config = serializers.JSONField(required=False, help_text="Pipeline config fields; see the pipeline defaults.")
    data = serializers.JSONField(
        required=False, allow_null=True,
        help_text="Quality filters of the run's snapshot (sft, reward, dpo): exclude_gold, reviewed_only, "
                  "exclude_flagged (booleans), min_competence (0 to 1), consensus ('', 'margin', 'weight'; "
                  "reward and dpo). See docs/training-config.md.",
    )


# What the schema documents for the start body and the defaults (training/api/config_schema.py).
TRAINING_RUN_START_SCHEMA = config_schema.training_run_start_schema(TrainingRunStartSerializer)
PIPELINE_DEFAULTS_SCHEMA = config_schema.PIPELINE_DEFAULTS_SCHEMA


class TrainingRunSerializer(serializers.ModelSerializer):
    progress = serializers.FloatField(read_only=True)
    output_model = serializers.SerializerMethodField()

    class Meta:
        model = TrainingRun
        fields = [
            "id", "kind", "project", "status", "step", "total_steps", "progress", "base_model", "reward_model",
            "snapshot", "config", "error", "output_model", "worker", "created_at", "started_at", "finished_at",
            "heartbeat_at", "updated_at",
        ]

    def get_output_model(self, run) -> int | None:
        model = getattr(run, "output_model", None)
        return model.pk if model is not None else None


class TrainingRunDetailSerializer(TrainingRunSerializer):
    snapshot = SnapshotSerializer(read_only=True)
    metrics = serializers.SerializerMethodField()

    class Meta(TrainingRunSerializer.Meta):
        fields = TrainingRunSerializer.Meta.fields + ["metrics", "log_tail", "checkpoint_dir"]

    def get_metrics(self, run) -> dict:
        return self.context.get("metrics", {})
