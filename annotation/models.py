"""Projects, prompts, responses, tasks, leases and annotations. Rules live in services.py."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class TimeStamped(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Project(TimeStamped):
    class ScoringStatus(models.TextChoices):
        NONE = "", "Never scored"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    guidelines = models.TextField(blank=True, help_text="Markdown shown to labelers.")
    overlap = models.PositiveSmallIntegerField(default=1, help_text="Annotations needed per task.")
    lease_seconds = models.PositiveIntegerField(default=600, help_text="How long a claimed task stays reserved.")
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="projects")
    # Active sampling: the reward model that scores comparison tasks, and how its last scoring went.
    reward_model = models.ForeignKey(
        "training.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="A reward model version; open comparisons can be prioritised where it is least sure.",
    )
    scoring_status = models.CharField(max_length=16, choices=ScoringStatus.choices, blank=True, default="")
    scoring_message = models.TextField(blank=True)
    scoring_updated_at = models.DateTimeField(null=True, blank=True)
    # Review: the share of each labeler's annotations drawn for review (annotation/reviews/sampling.py).
    review_rate = models.FloatField(default=0.0, help_text="Share of each labeler's work sent to review, 0 to 1.")
    # Gold tasks and qualification (annotation/gold.py, annotation/qualification.py); bounds in gold.py.
    gold_rate = models.FloatField(default=0.0, help_text="Share of claims that serve a gold task (0 to 1).")
    gold_training_mode = models.BooleanField(
        default=False, help_text="After a gold task, show the labeler the expected answer and its explanation."
    )
    qualification_tasks = models.PositiveSmallIntegerField(
        default=0, help_text="Gold answers a labeler gives before real work (0: no qualification)."
    )
    qualification_min_accuracy = models.FloatField(
        default=0.8, help_text="Share of those answers that must be right (0 to 1)."
    )
    # Dynamic overlap (annotation/overlap.py): a comparison whose labels disagree gets one more label.
    dynamic_overlap = models.BooleanField(
        default=False, help_text="A comparison whose labels disagree gets one more label, up to max_overlap."
    )
    max_overlap = models.PositiveSmallIntegerField(
        default=3, help_text="The most labels a disagreed comparison can get (at least the overlap)."
    )
    agreement_threshold = models.FloatField(
        default=0.6, help_text="Share of labels that must pick the same best response (0.5 to 1)."
    )

    class Meta:
        # A platform right (annotation/roles.py): superusers have it, Django admin or
        # `manage.py grant_project_creator` grants it to others.
        permissions = [("create_project", "Can create projects (and so administer them)")]
        constraints = [
            models.CheckConstraint(condition=Q(overlap__gte=1), name="project_overlap_positive"),
            models.CheckConstraint(condition=Q(lease_seconds__gte=10), name="project_lease_min_10s"),
            models.CheckConstraint(condition=Q(review_rate__gte=0, review_rate__lte=1), name="project_review_rate_0_1"),
            models.CheckConstraint(condition=Q(gold_rate__gte=0, gold_rate__lte=1), name="project_gold_rate_share"),
            models.CheckConstraint(
                condition=Q(qualification_min_accuracy__gte=0, qualification_min_accuracy__lte=1),
                name="project_qualification_accuracy_share",
            ),
            # Dynamic overlap (annotation/overlap.py holds the same bounds for the form and the API).
            models.CheckConstraint(
                condition=Q(max_overlap__gte=1, max_overlap__lte=20), name="project_max_overlap_bounded",
                violation_error_message="max_overlap must be a whole number from 1 to 20.",
            ),
            models.CheckConstraint(
                condition=Q(dynamic_overlap=False) | Q(max_overlap__gte=F("overlap")),
                name="project_max_overlap_covers_overlap",
                violation_error_message="max_overlap must be at least the overlap while dynamic overlap is on.",
            ),
            models.CheckConstraint(
                condition=Q(agreement_threshold__gte=0.5, agreement_threshold__lte=1),
                name="project_agreement_threshold_share",
                violation_error_message="agreement_threshold must be a number from 0.5 to 1.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(TimeStamped):
    class Role(models.TextChoices):
        # What each role may do is annotation/roles.py's table.
        ADMIN = "admin", "Admin"
        ENGINEER = "engineer", "Engineer"
        LABELER = "labeler", "Labeler"
        REVIEWER = "reviewer", "Reviewer"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.LABELER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "project"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} ({self.role})"


class Prompt(TimeStamped):
    # Lookups by project use the unique (project, external_id) index, whose first column it is.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prompts", db_index=False)
    messages = models.JSONField(help_text="A chat: a list of {role, content}; the last turn is the user's.")
    external_id = models.CharField(max_length=200)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "external_id"], name="prompt_external_id_unique")]

    def __str__(self) -> str:
        return f"Prompt {self.external_id}"


class Response(TimeStamped):
    class Source(models.TextChoices):
        HUMAN = "human", "Human"
        MODEL = "model", "Model"
        IMPORT = "import", "Import"

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="responses")
    text = models.TextField()
    source = models.CharField(max_length=16, choices=Source.choices)
    # These three are empty for most responses (an import's, a model's): each is indexed only where
    # it is set (Meta.indexes), so writing a response adds no index entry for an empty one.
    model_version = models.ForeignKey(
        "training.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="responses",
        db_index=False,
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="responses",
        db_index=False,
    )
    # A labeler's rewrite of another response ("edit to improve") points at the response it improves.
    edited_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="edits", db_index=False
    )

    class Meta:
        indexes = [
            models.Index(fields=["model_version"], name="response_model_version_set",
                         condition=Q(model_version__isnull=False)),
            models.Index(fields=["author"], name="response_author_set", condition=Q(author__isnull=False)),
            models.Index(fields=["edited_from"], name="response_edited_from_set", condition=Q(edited_from__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"Response {self.pk} ({self.source})"


class Task(TimeStamped):
    class Kind(models.TextChoices):
        DEMONSTRATION = "demonstration", "Demonstration"
        COMPARISON = "comparison", "Comparison"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="tasks")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    responses = models.ManyToManyField(Response, through="TaskResponse", related_name="tasks")
    priority = models.IntegerField(default=0)
    required = models.PositiveSmallIntegerField(default=1)
    done = models.PositiveIntegerField(
        default=0, help_text="Stored annotations that count: skips, rejected and corrected ones excluded."
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    metadata = models.JSONField(default=dict, blank=True)
    # Active sampling: the gap between the reward model's top two scores; null until scored.
    reward_margin = models.FloatField(null=True, blank=True)
    # A gold task has a known answer (annotation/gold.py): {"ranking": [[response id, ...], ...],
    # "explanation": "..."} for a comparison, {"reference": "...", "explanation": "..."} for a
    # demonstration. It is served at the project's gold rate, never fills up, and is no progress.
    is_gold = models.BooleanField(default=False, db_default=False)  # raw INSERTs (bench/labeling.py) need none
    gold = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [
            # The claim query walks these in order and stops at the first free task.
            models.Index(
                F("project"), F("priority").desc(), F("id").asc(), name="task_claim_any",
                condition=Q(status="open", is_gold=False),
            ),
            models.Index(
                F("project"), F("kind"), F("priority").desc(), F("id").asc(),
                name="task_claim_kind", condition=Q(status="open", is_gold=False),
            ),
            # The gold claim walks the project's gold tasks the same way (sql/claim.py).
            models.Index(
                F("project"), F("priority").desc(), F("id").asc(), name="task_gold_any", condition=Q(is_gold=True)
            ),
            models.Index(
                F("project"), F("kind"), F("priority").desc(), F("id").asc(),
                name="task_gold_kind", condition=Q(is_gold=True),
            ),
        ]
        constraints = [models.CheckConstraint(condition=Q(required__gte=1), name="task_required_positive")]

    def __str__(self) -> str:
        return f"Task {self.pk} ({self.kind})"


class ProgressCounter(models.Model):
    """A project's progress per task kind, rolled up as tasks change: what progress bars read.

    Database triggers on annotation_task keep it (migration 0009_progress_counters, for PostgreSQL
    and SQLite): every insert, delete, or change of a task's done, status, required, kind or gold
    flag adds the new row's figures and takes away the old row's, in the statement's transaction.
    So every writer (a submit's raw SQL, a review's rejection, undo, imports, the bench's raw
    INSERTs) keeps it right, and reading a project's progress sums a few rows instead of scanning
    its tasks. A task's figures go to shard `id % SHARDS`, so concurrent submits on different
    tasks update different rows instead of queueing on one; a submit's change is one UPDATE in place. Gold tasks count nowhere: they never
    fill up. No foreign key: a trigger on annotation_project removes a deleted project's rows.
    """

    SHARDS = 64  # migration 0009's triggers use the same number

    project_id = models.BigIntegerField()
    kind = models.CharField(max_length=16)
    shard = models.SmallIntegerField()
    tasks = models.BigIntegerField(default=0)
    done_tasks = models.BigIntegerField(default=0)
    annotations = models.BigIntegerField(default=0, help_text="The sum of the tasks' done.")
    required = models.BigIntegerField(default=0, help_text="The sum of the tasks' required.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project_id", "kind", "shard"], name="progress_counter_unique"),
        ]


class TaskResponse(models.Model):
    """A response shown by a comparison task, at its stored random display position."""

    # The task's lookups use the unique (task, ...) indexes below, whose first column it is.
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="task_responses", db_index=False)
    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="task_responses")
    position = models.PositiveSmallIntegerField()
    reward_score = models.FloatField(null=True, blank=True, help_text="The reward model's score of this response.")
    reward_model = models.ForeignKey(  # indexed only where set (Meta.indexes): most responses are never scored
        "training.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    scored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["task", "response"], name="task_response_unique"),
            # On PostgreSQL its index also INCLUDEs response_id (migration 0018: the raw export reads it alone).
            models.UniqueConstraint(fields=["task", "position"], name="task_response_position_unique"),
        ]
        indexes = [
            models.Index(fields=["reward_model"], name="task_response_scorer_set", condition=Q(reward_model__isnull=False)),
        ]


class ShownResponses(models.Model):
    """A comparison task's shown responses as the raw export lists them: a JSON text, kept on PostgreSQL.

    `[{"id": 7, "text": "..."}, ...]` in display order, written in the transaction that links the
    task's responses (an import, a generation job: annotation/shown_responses.py), and read by the
    raw export with one primary-key probe instead of the task's links and each response's text.
    Database triggers (migration 0019) delete a task's row when one of its links is inserted,
    deleted or changed, or one of its responses' text changes; nothing writes it again, so the
    export then builds that task's list from the links, as it does for a task that never had one.
    No foreign key in the database (one check fewer per imported row); Django deletes it with its
    task.
    """

    task = models.OneToOneField(
        Task, on_delete=models.CASCADE, primary_key=True, related_name="+", db_constraint=False
    )
    json = models.TextField()


class Lease(models.Model):
    """A labeler's reservation of a task until `expires_at`. An expired lease counts for nothing."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="leases")
    labeler = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="leases")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "labeler"], name="lease_unique")]
        indexes = [
            models.Index(fields=["labeler", "project", "expires_at"], name="lease_resume"),
            models.Index(fields=["task", "expires_at"], name="lease_live"),
        ]


class Annotation(TimeStamped):
    class Kind(models.TextChoices):
        DEMONSTRATION = "demonstration", "Demonstration"
        COMPARISON = "comparison", "Comparison"
        SKIP = "skip", "Skip"

    class Strength(models.TextChoices):
        MUCH_BETTER = "much_better", "Much better"
        BETTER = "better", "Better"
        SLIGHTLY_BETTER = "slightly_better", "Slightly better"
        TIE = "tie", "Tie"

    class ReviewState(models.TextChoices):
        # The verdict of the annotation's review (annotation/reviews/). Rejected and corrected
        # annotations no longer count: not in the task's `done`, the exports or the dashboard.
        NONE = "", "Not reviewed"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"
        CORRECTED = "corrected", "Corrected"

    class Flag(models.TextChoices):
        FAILS_INSTRUCTION = "fails_instruction", "Fails the instruction"
        FACTUAL_ERROR = "factual_error", "Factual error"
        HARMFUL = "harmful", "Harmful"

    # task, project and labeler are each the first column of an index in Meta (task's is the unique
    # (task, labeler)), which serves their lookups, so they have no index of their own.
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="annotations", db_index=False)
    # Denormalised from the task, so dashboards aggregate one project without a join or a scan.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="annotations", db_index=False)
    # A platform labeler's work, or a label imported from a named outside source (annotation/import_formats/):
    # then labeler is empty and external_source names it ("hh-rlhf"). An external label is no
    # labeler's work (reliability, agreement, review, gold, leaderboards and My work leave it out)
    # but counts toward its task's done, unless the import hid it (external_hidden): then it is
    # kept for reference, counts nowhere and is exported by no default export.
    labeler = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="annotations",
        db_index=False,
    )
    external_source = models.CharField(max_length=100, blank=True, default="", db_default="")
    external_hidden = models.BooleanField(default=False, db_default=False)  # db defaults: raw INSERTs need neither
    client_id = models.UUIDField(unique=True, default=uuid.uuid4)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    time_spent_ms = models.PositiveIntegerField(default=0)
    lease_expired = models.BooleanField(default=False, help_text="Arrived after its lease had expired; kept anyway.")
    # demonstration
    text = models.TextField(blank=True)
    response = models.OneToOneField(
        Response, null=True, blank=True, on_delete=models.SET_NULL, related_name="demonstration"
    )
    # comparison: groups of response ids, best first; a group of several is a tie
    ranking = models.JSONField(default=list, blank=True)
    strength = models.CharField(max_length=16, choices=Strength.choices, blank=True)
    flags = models.JSONField(default=dict, blank=True, help_text="{response_id: [flag, ...]}")
    all_bad = models.BooleanField(default=False)
    rationale = models.TextField(blank=True)
    # comparison, optional: the labeler's rewrite of the best response, stored as a human Response
    edited_response = models.OneToOneField(
        Response, null=True, blank=True, on_delete=models.SET_NULL, related_name="edit_annotation"
    )
    # comparison on a task the reward model scored: does the judgement agree with the scores?
    # reward_top_agrees: the reward model's best response is in the labeler's top group (null: not scored).
    reward_top_agrees = models.BooleanField(null=True, blank=True)
    reward_pairs = models.PositiveSmallIntegerField(default=0, help_text="Ordered pairs of the ranking, ties excluded.")
    reward_pairs_agreeing = models.PositiveSmallIntegerField(default=0, help_text="Pairs the reward model orders the same way.")
    # On a gold task: did the judgement match the gold answer (annotation/gold.py)? Null: not gradable.
    gold_correct = models.BooleanField(null=True, blank=True)
    # skip
    reason = models.TextField(blank=True)
    review_state = models.CharField(max_length=16, choices=ReviewState.choices, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "labeler"], name="annotation_once_per_labeler"),
            models.CheckConstraint(
                condition=(Q(labeler__isnull=False, external_source="", external_hidden=False)
                           | (Q(labeler__isnull=True) & ~Q(external_source=""))),
                name="annotation_labeler_or_external_source",
            ),
            models.CheckConstraint(
                condition=Q(edited_response__isnull=True) | Q(kind="comparison"), name="annotation_edit_on_comparison"
            ),
            models.CheckConstraint(
                condition=Q(reward_pairs_agreeing__lte=F("reward_pairs")), name="annotation_reward_pairs_in_range"
            ),
        ]
        indexes = [
            # A labeler's own annotations; an imported label has no labeler, so it needs no entry here.
            models.Index(fields=["labeler", "task"], name="annotation_by_labeler", condition=Q(labeler__isnull=False)),
            models.Index(fields=["project", "labeler"], name="annotation_project_labeler"),
            models.Index(fields=["project", "created_at"], name="annotation_project_created"),
            models.Index(fields=["project", "kind"], name="annotation_project_kind"),
            # Exports read a project's annotations in id order from a cursor: this index gives them
            # in that order at once, however many other projects' rows the table holds.
            models.Index(fields=["project", "id"], name="annotation_project_id_order"),
        ]

    def __str__(self) -> str:
        return f"Annotation {self.pk} ({self.kind})"

    def save(self, *args, **kwargs):
        if self.project_id is None and self.task_id is not None:
            self.project_id = Task.objects.values_list("project_id", flat=True).get(pk=self.task_id)
        super().save(*args, **kwargs)


# Reliability and agreement ---------------------------------------------------------------------


class AnnotationFlag(models.Model):
    """Why an annotation deserves a second look: it was very fast, or its labeler is biased or an outlier.

    Raised by the periodic quality run (annotation/reliability/); the evidence is in `detail`. A flag
    is never withdrawn by a later run: reviewing the annotation settles it. `handed_over_at` records
    when the review queue took it (annotation.reliability.flags.annotation_flags_hand_over).
    """

    class Reason(models.TextChoices):
        FAST = "fast", "Too fast"  # much faster than the project's median for the kind of task
        POSITION_BIAS = "position_bias", "Position bias"  # picks the first shown far more than chance
        OUTLIER = "outlier", "Outlier"  # disagrees with the other labelers far more than chance

    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="quality_flags")
    # Denormalised from the annotation, so a project's flags are found by index.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=16, choices=Reason.choices)
    detail = models.JSONField(default=dict, blank=True, help_text="The evidence: times, counts, p-values.")
    created_at = models.DateTimeField(auto_now_add=True)
    handed_over_at = models.DateTimeField(null=True, blank=True, help_text="When the review queue took it.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["annotation", "reason"], name="annotation_flag_once_per_reason")]
        indexes = [
            models.Index(fields=["project", "reason"], name="annotation_flag_project"),
            models.Index(
                fields=["project", "id"], name="annotation_flag_pending", condition=Q(handed_over_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return f"Flag {self.reason} on annotation {self.annotation_id}"


# Review: the reviewer role's queue (annotation/reviews/) ------------------------------------------

# The annotations that count toward a task's `done`, the exports and the dashboard: a rejected
# annotation stops counting, and a corrected one gives way to its correction (the reviewer's own).
# A hidden external label (one imported with labels=hide) counts nowhere either.
ANNOTATION_COUNTS = ~Q(review_state__in=[Annotation.ReviewState.REJECTED, Annotation.ReviewState.CORRECTED]) & Q(
    external_hidden=False
)
# The annotations that are a platform labeler's work: what reliability, agreement and leaderboards read.
LABELER_WORK = Q(labeler__isnull=False)


class ReviewItem(TimeStamped):
    """One annotation waiting for, or given, a review. At most one per annotation, so none is reviewed twice.

    A reviewer claims it as labelers claim tasks: `leased_by` holds it until `lease_expires_at`
    (an expired lease counts for nothing), and the verdict is stored once, idempotent on `client_id`.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for review"
        DECIDED = "decided", "Reviewed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    annotation = models.OneToOneField(Annotation, on_delete=models.CASCADE, related_name="review")
    # Denormalised from the annotation, so the claim and the per-labeler counts need no join.
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="+")
    labeler = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviews_received", db_index=False
    )
    reason = models.CharField(max_length=200, help_text="Why it is reviewed: the sample, or what flagged it.")
    priority = models.SmallIntegerField(default=0, help_text="Flagged work (1) is reviewed before the sample (0).")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    leased_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # The verdict
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="reviews_given"
    )
    verdict = models.CharField(max_length=16, choices=Annotation.ReviewState.choices, blank=True, default="")
    comment = models.TextField(blank=True, help_text="The reviewer's words to the labeler; required to reject.")
    correction = models.OneToOneField(
        Annotation, null=True, blank=True, on_delete=models.SET_NULL, related_name="corrected_review"
    )
    client_id = models.UUIDField(null=True, blank=True, unique=True)
    time_spent_ms = models.PositiveIntegerField(default=0)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The claim walks this in order and stops at the first item the reviewer may take.
            models.Index(
                F("project"), F("priority").desc(), F("id").asc(), name="review_claim", condition=Q(status="pending")
            ),
            models.Index(fields=["leased_by", "project"], name="review_resume", condition=Q(status="pending")),
            models.Index(fields=["labeler", "project", "decided_at"], name="review_of_labeler"),
            models.Index(fields=["project", "labeler"], name="review_project_labeler"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="pending", verdict="") | (Q(status="decided") & ~Q(verdict="")),
                name="review_verdict_iff_decided",
            ),
            models.CheckConstraint(condition=~Q(verdict="rejected") | ~Q(comment=""), name="review_reject_has_comment"),
            models.CheckConstraint(
                condition=Q(verdict="corrected") | Q(correction__isnull=True), name="review_correction_only_if_corrected"
            ),
        ]

    def __str__(self) -> str:
        return f"Review of annotation {self.annotation_id} ({self.verdict or self.status})"


class ReviewTally(models.Model):
    """How many reviewable annotations a labeler has stored in a project: the position the review draw reads."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    labeler = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    submitted = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "labeler"], name="review_tally_unique")]


# Gold tasks and qualification ------------------------------------------------------------------


class GoldRecord(TimeStamped):
    """A labeler's record on a project's gold tasks: the counts behind their gold accuracy, and
    their qualification (annotation/qualification.py).

    Kept per (project, labeler), not per membership, so removing and re-adding a labeler keeps
    it: a held-out labeler cannot start over that way. The submit of a gold task updates it in
    the same transaction, so the dashboard reads one row per labeler instead of their annotations.
    """

    class Status(models.TextChoices):
        QUALIFYING = "qualifying", "Qualifying"
        QUALIFIED = "qualified", "Qualified"
        HELD_OUT = "held_out", "Held out"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="gold_records")
    labeler = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="gold_records")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUALIFYING)
    gold_served = models.PositiveIntegerField(default=0, help_text="Gold tasks leased to the labeler.")
    gold_answered = models.PositiveIntegerField(default=0, help_text="Graded gold answers (gold_correct not null).")
    gold_correct = models.PositiveIntegerField(default=0, help_text="Of those, the ones that matched.")
    qualification_skips = models.PositiveIntegerField(
        default=0, help_text="Gradable gold tasks skipped while qualifying; they count as wrong answers."
    )
    # The tally the qualification was decided on, kept as it was (the live counts go on growing).
    decided_answered = models.PositiveIntegerField(null=True, blank=True)
    decided_correct = models.PositiveIntegerField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    readmitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    readmitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "labeler"], name="gold_record_unique"),
            models.CheckConstraint(condition=Q(gold_correct__lte=F("gold_answered")), name="gold_record_correct_le"),
        ]

    def __str__(self) -> str:
        return f"Gold record of {self.labeler_id} in {self.project_id} ({self.status})"


class ExportRecord(models.Model):
    """One complete export of a project: when it started, its format and filters, how many lines.

    Written when the last line has gone out (an interrupted download records nothing), so "since
    the last export" (export_filters.since_last_export) picks up from the last export that
    arrived. Its start is the cut: work submitted while it streamed comes in the next one.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="export_records")
    format = models.CharField(max_length=16)
    filters = models.JSONField(default=dict, blank=True)
    rows = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["project", "format", "-started_at"], name="export_record_latest")]

    def __str__(self) -> str:
        return f"{self.format} export of {self.project_id} at {self.started_at:%Y-%m-%d %H:%M} ({self.rows} lines)"


def model_version_model() -> type[models.Model]:
    """The model registry's model, the one Project.reward_model points to (training's ModelVersion).

    Annotation names it only by its label in that foreign key, so it imports nothing from training.
    """
    return Project._meta.get_field("reward_model").related_model


class HubPush(TimeStamped):
    """One upload to the Hugging Face Hub: a project's dataset export, or a registered model's directory.

    The token is never stored here (annotation.hub_push keeps it in the cache for the worker, once).
    A push ends succeeded only after the Hub accepted every file; anything else ends failed with the reason.
    """

    class Kind(models.TextChoices):
        DATASET = "dataset", "Dataset"
        MODEL = "model", "Model"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Uploading"
        SUCCEEDED = "succeeded", "Pushed"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="hub_pushes")
    model_version = models.ForeignKey(
        "training.ModelVersion", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    repo_id = models.CharField(max_length=96)
    private = models.BooleanField(default=True)
    format = models.CharField(max_length=16, blank=True, default="")
    filters = models.JSONField(default=dict, blank=True)
    license = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True, default="")
    url = models.CharField(max_length=300, blank=True, default="")
    rows = models.PositiveIntegerField(null=True, blank=True)
    # The worker uploading it ("host:pid") and its last sign of life: a running push whose worker is
    # gone is ended by the sweep (annotation/hub_push_recovery.py).
    worker = models.CharField(max_length=200, blank=True, default="")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="dataset", project__isnull=False, model_version__isnull=True)
                           | Q(kind="model", model_version__isnull=False)),
                name="hub_push_dataset_or_model",
            ),
            models.CheckConstraint(condition=Q(status__in=["queued", "running", "succeeded", "failed"]),
                                   name="hub_push_status_known"),
        ]
        indexes = [
            models.Index(fields=["project", "-created_at"], name="hub_push_project_latest"),
            models.Index(fields=["model_version", "-created_at"], name="hub_push_model_latest"),
            models.Index(fields=["heartbeat_at"], condition=Q(status="running"), name="hub_push_running"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} push to {self.repo_id} ({self.status})"
