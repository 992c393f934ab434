from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from training.models import DatasetSnapshot, ModelVersion, TrainingRun

from . import config_schema


class RewardCheckSerializer(serializers.Serializer):
    """Is a reward model still right? Its agreement with the newest human labels on the current policy's samples."""

    reward_model = serializers.IntegerField()
    reward_model_name = serializers.CharField()
    project = serializers.IntegerField()
    project_name = serializers.CharField()
    status = serializers.CharField(help_text="queued, running, succeeded or failed: the last computation")
    message = serializers.CharField()
    policy = serializers.IntegerField(allow_null=True, help_text="The policy whose samples the labels judged.")
    policy_name = serializers.CharField(allow_null=True)
    agreement = serializers.FloatField(
        allow_null=True, help_text="Share of the labels' ordered pairs the reward model orders the same way."
    )
    agreement_percent = serializers.FloatField(allow_null=True)
    eval_accuracy = serializers.FloatField(allow_null=True, help_text="The model's own held-out pairwise accuracy.")
    labels = serializers.IntegerField()
    pairs = serializers.IntegerField()
    computed_at = serializers.DateTimeField(allow_null=True)
    stale = serializers.BooleanField(help_text="Below 0.6, or more than 0.1 below its own eval accuracy.")
    verdict = serializers.ChoiceField(choices=["ok", "stale", "too few labels", "not computed"])
    hint = serializers.CharField()


class ModelVersionSerializer(serializers.ModelSerializer):
    reward_checks = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "id", "name", "kind", "path", "source", "parent", "project", "produced_by", "metrics", "created_at",
            "reward_checks",
        ]

    @extend_schema_field(RewardCheckSerializer(many=True))
    def get_reward_checks(self, model) -> list:
        """A reward model's checks in the projects where you train (context "reward_checks"); [] otherwise."""
        return RewardCheckSerializer(self.context.get("reward_checks", {}).get(model.pk, []), many=True).data


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


class MemoryEstimateRequestSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=TrainingRun.Kind.choices)
    project = serializers.IntegerField()
    base_model = serializers.JSONField(help_text="Model version id.")
    config = serializers.JSONField(required=False, help_text="Pipeline config fields, as for starting a run.")


class MemoryEstimateSerializer(serializers.Serializer):
    """Bytes per GPU by part (training/pipelines/presets.py explains each)."""

    parameters = serializers.IntegerField()
    trainable_parameters = serializers.IntegerField()
    method = serializers.ChoiceField(choices=["full", "lora", "qlora"])
    preset = serializers.CharField(allow_null=True, help_text="The size preset applied (auto resolved), or null.")
    weights = serializers.IntegerField()
    training = serializers.IntegerField(help_text="Trainable weights, gradients and AdamW states.")
    activations = serializers.IntegerField()
    overhead = serializers.IntegerField()
    total = serializers.IntegerField()
    total_gib = serializers.FloatField()
    target_gib = serializers.IntegerField(help_text="The GPU the model's size is made for, in GB.")
    fits = serializers.BooleanField()
    zero3_gpus = serializers.IntegerField(allow_null=True)
    zero3_total = serializers.IntegerField(allow_null=True, help_text="Per GPU under ZeRO-3 (full fine-tuning).")
    zero3_total_gib = serializers.FloatField(required=False)
    notes = serializers.ListField(child=serializers.CharField())
    summary = serializers.CharField()
    preset_values = serializers.DictField(help_text="The config values of the preset applied.")


# What the schema documents for the start body and the defaults (training/api/config_schema.py).
TRAINING_RUN_START_SCHEMA = config_schema.training_run_start_schema(TrainingRunStartSerializer)
PIPELINE_DEFAULTS_SCHEMA = config_schema.PIPELINE_DEFAULTS_SCHEMA


class TrainingRunSerializer(serializers.ModelSerializer):
    progress = serializers.FloatField(read_only=True)
    output_model = serializers.SerializerMethodField()
    phase = serializers.CharField(
        read_only=True,
        help_text="freezing (the worker writes the run's dataset snapshot; snapshot is null until then), "
                  "training, or the status when the run is not running.",
    )
    data = serializers.JSONField(source="data_filters", read_only=True,
                                 help_text="The quality filters the run's snapshot is frozen with.")

    class Meta:
        model = TrainingRun
        fields = [
            "id", "kind", "project", "status", "phase", "step", "total_steps", "progress", "base_model",
            "reward_model", "snapshot", "data", "frozen_rows", "frozen_rows_expected", "config", "error",
            "output_model", "worker", "created_at", "started_at", "finished_at", "heartbeat_at", "updated_at",
        ]

    def get_output_model(self, run) -> int | None:
        model = getattr(run, "output_model", None)
        return model.pk if model is not None else None


class TrainingRunDetailSerializer(TrainingRunSerializer):
    snapshot = SnapshotSerializer(read_only=True, allow_null=True)  # null while the worker freezes it
    metrics = serializers.SerializerMethodField()

    class Meta(TrainingRunSerializer.Meta):
        fields = TrainingRunSerializer.Meta.fields + ["metrics", "log_tail", "checkpoint_dir"]

    def get_metrics(self, run) -> dict:
        return self.context.get("metrics", {})
