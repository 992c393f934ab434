"""Model registry, dataset snapshots and training runs. Rules live in services.py."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from jobs.models import Job, JobStatus


class TimeStamped(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class ModelVersion(TimeStamped):
    """A model the platform can train from, sample from or score with.

    It belongs to one project, or to none: a global base model that a superuser (or the operator's
    BASE_MODEL setting) registered. Runs, generation, evaluations and active sampling of a project
    take only its own models and the global ones. Deleting a project deletes its models.
    """

    class Kind(models.TextChoices):
        BASE = "base", "Base"
        SFT = "sft", "SFT"
        REWARD = "reward", "Reward"
        POLICY = "policy", "Policy"

    class Source(models.TextChoices):
        # Where `path` points, decided once when the row is written (training/registry.py), never
        # guessed from the path later: a user's hub id can never name a platform directory.
        STORAGE = "storage", "Platform storage"  # relative to STORAGE_ROOT, written by the platform
        LOCAL = "local", "Local directory"  # an absolute directory under FEEDBACKLOOP_MODEL_ROOTS
        HUB = "hub", "Hub id"  # a Hugging Face hub id, read from the local cache (offline)

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    path = models.CharField(max_length=500, help_text="Relative to STORAGE_ROOT, an absolute directory, or a hub id.")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.STORAGE)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.RESTRICT, related_name="children")
    produced_by = models.OneToOneField(
        "TrainingRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="output_model"
    )
    project = models.ForeignKey(
        "annotation.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="model_versions",
        help_text="The project it belongs to; none for a global base model.",
    )
    metrics = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class DatasetSnapshot(TimeStamped):
    """A frozen export: files under STORAGE_ROOT with their sha256 and row counts."""

    class Format(models.TextChoices):
        SFT = "sft", "SFT"
        PREFERENCE = "preference", "Preference"
        PROMPTS = "prompts", "Prompts"

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="snapshots")
    format = models.CharField(max_length=16, choices=Format.choices)
    path = models.CharField(max_length=500, help_text="Relative to STORAGE_ROOT.")
    sha256 = models.CharField(max_length=64)
    row_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    # The quality filters the export was taken with (annotation.export_filters.ExportFilters.as_dict):
    # {} is every annotation that counts.
    filters = models.JSONField(default=dict, blank=True, help_text="The export's quality filters; {} for none.")

    def __str__(self) -> str:
        return f"{self.project} {self.format} snapshot {self.pk} ({self.row_count} rows)"


class TrainingRun(Job):
    """A training run: a job (jobs/models.py) that freezes a snapshot, trains a pipeline and registers a model."""

    class Kind(models.TextChoices):
        SFT = "sft", "SFT"
        REWARD = "reward", "Reward model"
        DPO = "dpo", "DPO"
        RLHF = "rlhf", "RLHF"

    Status = JobStatus

    kind = models.CharField(max_length=16, choices=Kind.choices)
    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="training_runs")
    # RESTRICT, not PROTECT: a model in use cannot be deleted on its own, but deleting its project
    # removes the project's runs and models together.
    base_model = models.ForeignKey(ModelVersion, on_delete=models.RESTRICT, related_name="runs_as_base")
    reward_model = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.RESTRICT, related_name="runs_as_reward"
    )
    # Null until the worker has frozen it: creating a run never waits on an export (runner.run_execute).
    snapshot = models.ForeignKey(DatasetSnapshot, null=True, blank=True, on_delete=models.RESTRICT, related_name="runs")
    data_filters = models.JSONField(
        default=dict, blank=True,
        help_text="The run's `data`: the quality filters its snapshot is frozen with (ExportFilters.as_dict).",
    )
    frozen_rows = models.PositiveIntegerField(default=0, help_text="Snapshot rows written so far while it freezes.")
    frozen_rows_expected = models.PositiveIntegerField(
        null=True, blank=True, help_text="How many rows the snapshot will have, where a cheap count knows it.",
    )
    config = models.JSONField(default=dict, blank=True)
    checkpoint_dir = models.CharField(max_length=500, blank=True, help_text="Relative to STORAGE_ROOT.")
    ray_job_id = models.CharField(
        max_length=100, blank=True,
        help_text="The Ray job of the run's latest attempt, when it runs on a Ray cluster (jobs/executors_ray.py).",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="rlhf") | Q(reward_model__isnull=False), name="rlhf_run_needs_reward_model"
            ),
            models.CheckConstraint(condition=Q(step__lte=F("total_steps")) | Q(total_steps=0), name="run_step_in_range"),
        ]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="run_status_heartbeat")]

    def __str__(self) -> str:
        return f"{self.kind} run {self.pk} ({self.status})"

    @property
    def phase(self) -> str:
        """What an active run is doing: queued, freezing (its dataset snapshot), training; else its status."""
        if self.status == self.Status.RUNNING and self.snapshot_id is None:
            return "freezing"
        if self.status == self.Status.RUNNING:
            return "training"
        return self.status


class MetricPoint(models.Model):
    """One logged value of a run's metric history."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="metric_points")
    step = models.PositiveIntegerField()
    name = models.CharField(max_length=100)
    value = models.FloatField()

    class Meta:
        ordering = ["step", "id"]
        indexes = [models.Index(fields=["run", "name", "step"], name="metric_run_name_step")]


class Evaluation(TimeStamped):
    """A human A/B evaluation: two models answer the same held-out prompts, labelers pick the better answer."""

    class Status(models.TextChoices):
        GENERATING = "generating", "Generating"
        LABELING = "labeling", "Labeling"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="evaluations")
    model_a = models.ForeignKey(ModelVersion, on_delete=models.RESTRICT, related_name="evaluations_as_a")
    model_b = models.ForeignKey(ModelVersion, on_delete=models.RESTRICT, related_name="evaluations_as_b")
    prompts = models.ManyToManyField("annotation.Prompt", related_name="evaluations", blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.GENERATING)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(model_a=F("model_b")), name="evaluation_two_models"),
        ]

    def __str__(self) -> str:
        return f"Evaluation {self.pk}: {self.model_a.name} vs {self.model_b.name}"


class GenerationJob(Job):
    """Sample responses from a model (or two, for an A/B evaluation) and make comparison tasks of them (loop/)."""

    MAX_K = 8

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="generation_jobs")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.RESTRICT, related_name="generation_jobs")
    model_version_b = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.RESTRICT, related_name="generation_jobs_as_b",
        help_text="The second model of an A/B evaluation: one response from each model per prompt.",
    )
    evaluation = models.ForeignKey(
        Evaluation, null=True, blank=True, on_delete=models.CASCADE, related_name="generation_jobs"
    )
    prompt_ids = models.JSONField(default=list, help_text="The selected prompts, resolved when the job is created.")
    prompt_count = models.PositiveIntegerField(null=True, blank=True, help_text="How many prompts were asked for.")
    k = models.PositiveSmallIntegerField(help_text="Responses per prompt (per model for an A/B evaluation).")
    temperature = models.FloatField(default=1.0)
    top_p = models.FloatField(default=0.95)
    max_new_tokens = models.PositiveIntegerField(default=48)
    seed = models.IntegerField(default=0)
    tasks_created = models.PositiveIntegerField(default=0)
    responses_created = models.PositiveIntegerField(default=0)
    prompts_skipped = models.PositiveIntegerField(
        default=0, help_text="Prompts that made no task: fewer than 2 distinct responses after deduplication."
    )
    duplicates_dropped = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(k__gte=1, k__lte=8), name="generation_k_range"),
            models.CheckConstraint(condition=Q(temperature__gt=0), name="generation_temperature_positive"),
            models.CheckConstraint(condition=Q(top_p__gt=0, top_p__lte=1), name="generation_top_p_range"),
            models.CheckConstraint(condition=Q(max_new_tokens__gte=1), name="generation_max_new_tokens_positive"),
            models.CheckConstraint(
                condition=Q(step__lte=F("total_steps")) | Q(total_steps=0), name="generation_step_in_range"
            ),
            models.CheckConstraint(
                condition=Q(k__gte=2) | Q(model_version_b__isnull=False), name="generation_k2_unless_ab"
            ),
        ]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="generation_status_heartbeat")]

    def __str__(self) -> str:
        return f"Generation job {self.pk} ({self.status})"

    @property
    def job_dir(self) -> str:
        """Relative to STORAGE_ROOT."""
        return f"generation/{self.pk}"


class RewardModelCheck(TimeStamped):
    """Is a reward model still right? Its agreement with the newest human labels on the current policy's samples.

    One row per (reward model, project), recomputed by training/staleness/ on the `gpu` queue (a
    beat sweep, or the dashboard's button) and read by the registry and the dashboard. The status
    fields say how the last computation went; the numbers stay those of the last one that succeeded.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    reward_model = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="checks")
    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="reward_checks")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    message = models.TextField(blank=True)
    # The result of the last computation that succeeded
    policy = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The policy whose samples the labels judged: the newest model that wrote comparison candidates.",
    )
    agreement = models.FloatField(
        null=True, blank=True, help_text="Share of the labels' ordered pairs that the reward model orders the same way."
    )
    labels = models.PositiveIntegerField(default=0, help_text="Human comparison labels it was computed on.")
    pairs = models.PositiveIntegerField(default=0, help_text="Ordered response pairs in those labels, ties excluded.")
    computed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["reward_model", "project"], name="reward_check_unique"),
            models.CheckConstraint(
                condition=Q(agreement__isnull=True) | Q(agreement__gte=0, agreement__lte=1),
                name="reward_check_agreement_share",
            ),
        ]

    def __str__(self) -> str:
        return f"Check of {self.reward_model_id} in {self.project_id} ({self.status})"
