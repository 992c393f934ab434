from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from .models import (
    DatasetSnapshot, Evaluation, GenerationJob, MetricPoint, ModelVersion, RewardModelCheck, TrainingRun,
)


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "source", "project", "parent", "produced_by", "created_at"]
    list_filter = ["kind", "source"]
    search_fields = ["name", "path"]
    raw_id_fields = ["parent", "produced_by", "project"]


@admin.register(DatasetSnapshot)
class DatasetSnapshotAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "format", "row_count", "filters", "sha256", "created_at"]
    list_filter = ["format"]
    readonly_fields = ["path", "sha256", "row_count", "filters", "created_at", "updated_at"]
    raw_id_fields = ["project", "created_by"]


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "project", "status", "step", "total_steps", "worker", "heartbeat_at", "created_at"]
    list_filter = ["status", "kind"]
    search_fields = ["id", "project__name", "worker", "ray_job_id"]
    raw_id_fields = ["project", "base_model", "reward_model", "snapshot", "created_by"]
    readonly_fields = [
        "step", "total_steps", "worker", "pipeline_pid", "ray_job_id", "heartbeat_at", "started_at", "finished_at", "log_tail",
        "error", "checkpoint_dir", "metric_history", "created_at", "updated_at",
    ]

    @admin.display(description="Metric history")
    def metric_history(self, run):
        # A link, not an inline: a long run logs thousands of points.
        url = reverse("admin:training_metricpoint_changelist") + f"?run__id__exact={run.pk}"
        return format_html('<a href="{}">{} points</a>', url, run.metric_points.count())


@admin.register(MetricPoint)
class MetricPointAdmin(admin.ModelAdmin):
    list_display = ["run", "step", "name", "value"]
    list_filter = ["name"]
    raw_id_fields = ["run"]


@admin.register(GenerationJob)
class GenerationJobAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "model_version", "model_version_b", "k", "status", "step", "total_steps",
                    "tasks_created", "created_at"]
    list_filter = ["status"]
    raw_id_fields = ["project", "model_version", "model_version_b", "evaluation", "created_by"]
    readonly_fields = ["step", "total_steps", "tasks_created", "responses_created", "prompts_skipped",
                       "duplicates_dropped", "worker", "pipeline_pid", "created_at", "updated_at"]


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "model_a", "model_b", "status", "created_at"]
    list_filter = ["status"]
    raw_id_fields = ["project", "model_a", "model_b", "created_by"]


@admin.register(RewardModelCheck)
class RewardModelCheckAdmin(admin.ModelAdmin):
    """Is the reward model still right? Computed by training/staleness/; read-only here."""

    list_display = ["reward_model", "project", "agreement", "labels", "pairs", "policy", "status", "computed_at"]
    list_filter = ["status"]
    raw_id_fields = ["reward_model", "project", "policy"]
    readonly_fields = [
        "reward_model", "project", "status", "message", "policy", "agreement", "labels", "pairs", "computed_at",
        "created_at", "updated_at",
    ]
