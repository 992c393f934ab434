"""Forms of the project admin pages. They check types and shapes; the rules live in services."""

from django import forms
from django.db.models import Q

from . import gold
from . import overlap as overlap_rules
from .errors import ServiceError
from .importers import FORMATS as IMPORT_FORMATS
from .models import Membership, model_version_model
from .reviews.sampling import REVIEW_RATE_HELP, REVIEW_RATE_MAX, REVIEW_RATE_MIN

MAX_OVERLAP = 100
MAX_LEASE_SECONDS = 7 * 24 * 3600


class ServiceErrorMixin:
    """Show a service's error on the field it names, or above the form when it names none."""

    def add_service_error(self, error: ServiceError) -> None:
        field = error.field if error.field in self.fields else None
        self.add_error(field, error.message)


class ProjectSettingsForm(ServiceErrorMixin, forms.Form):
    name = forms.CharField(max_length=200)
    guidelines = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 12}),
        help_text="Markdown. Labelers see it beside every task.",
    )
    overlap = forms.IntegerField(
        min_value=1, max_value=MAX_OVERLAP, initial=1, help_text="How many labelers judge each task."
    )
    lease_seconds = forms.IntegerField(
        min_value=10,
        max_value=MAX_LEASE_SECONDS,
        initial=600,
        label="Lease (seconds)",
        help_text="How long a claimed task stays reserved for its labeler.",
    )
    review_rate = forms.FloatField(
        min_value=REVIEW_RATE_MIN, max_value=REVIEW_RATE_MAX, initial=0.0, label="Review rate", required=False,
        help_text=REVIEW_RATE_HELP, widget=forms.NumberInput(attrs={"step": "0.01"}),
    )
    reward_model = forms.ModelChoiceField(
        queryset=None,
        required=False,
        empty_label="None",
        help_text="Scores open comparisons so the least certain are labeled first (active sampling).",
    )

    # Gold tasks and qualification; the bounds are gold.py's.
    gold_rate = forms.FloatField(
        required=False, min_value=0, max_value=gold.GOLD_RATE_MAX, initial=0, label="Gold rate",
        help_text="Share of tasks served that are gold (known answers), from 0 to 1: 0.1 is one in ten. 0: none.",
    )
    gold_training_mode = forms.BooleanField(
        required=False, label="Training mode",
        help_text="After a gold task, show the labeler the expected answer and its explanation.",
    )
    qualification_tasks = forms.IntegerField(
        required=False, min_value=0, max_value=gold.QUALIFICATION_TASKS_MAX, initial=0, label="Qualification tasks",
        help_text="Gold comparisons a new labeler answers before real work. 0: no qualification.",
    )
    qualification_min_accuracy = forms.FloatField(
        required=False, min_value=0, max_value=gold.ACCURACY_MAX, initial=0.8, label="Qualification accuracy",
        help_text="Share of those answers that must match, from 0 to 1; below it the labeler is held out.",
    )

    # Dynamic overlap; the bounds are overlap.py's.
    dynamic_overlap = forms.BooleanField(
        required=False, label="Turn on", help_text=overlap_rules.DYNAMIC_OVERLAP_HELP
    )
    max_overlap = forms.IntegerField(
        required=False, min_value=1, max_value=overlap_rules.MAX_OVERLAP_CAP,
        initial=overlap_rules.MAX_OVERLAP_DEFAULT, label="Maximum overlap", help_text=overlap_rules.MAX_OVERLAP_HELP,
    )
    agreement_threshold = forms.FloatField(
        required=False, min_value=overlap_rules.THRESHOLD_MIN, max_value=overlap_rules.THRESHOLD_MAX,
        initial=overlap_rules.THRESHOLD_DEFAULT, label="Agreement threshold",
        help_text=overlap_rules.THRESHOLD_HELP,
        widget=forms.NumberInput(attrs={"step": "0.01"}),
    )

    def __init__(self, *args, project=None, **kwargs):
        super().__init__(*args, **kwargs)
        if "reward_model" in self.fields:
            ModelVersion = model_version_model()
            scope = Q(project__isnull=True) | Q(project=project) if project is not None else Q(project__isnull=True)
            self.fields["reward_model"].queryset = ModelVersion.objects.filter(
                scope, kind=ModelVersion.Kind.REWARD
            ).order_by("-created_at", "-id")

    def clean(self):
        cleaned = super().clean()
        # A number left empty keeps the project's value (a form of an older page may not have it).
        for name in ("review_rate", "gold_rate", "qualification_tasks", "qualification_min_accuracy", "max_overlap",
                     "agreement_threshold"):
            if name in cleaned and cleaned[name] is None:
                del cleaned[name]
        return cleaned

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("A project needs a name.")
        return name


class ProjectCreateForm(ProjectSettingsForm):
    slug = forms.SlugField(
        max_length=200, required=False, help_text="Used in file names. Leave empty to derive it from the name."
    )
    reward_model = None  # a new project has no models yet
    review_rate = None  # set in the settings once the project has labelers
    # Gold settings need gold tasks, which come with an import: they are set on the settings page.
    gold_rate = gold_training_mode = qualification_tasks = qualification_min_accuracy = None
    dynamic_overlap = max_overlap = agreement_threshold = None  # set in the settings, like the review rate
    field_order = ["name", "slug", "guidelines", "overlap", "lease_seconds"]


class MemberAddForm(ServiceErrorMixin, forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.LABELER)


class MemberRoleForm(ServiceErrorMixin, forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)


IMPORT_FORMAT_LABELS = {
    "jsonl": "JSONL (this platform's lines)", "csv": "CSV with a prompt column", "trl": "TRL preference rows",
    "hh-rlhf": "Anthropic HH-RLHF", "ultrafeedback": "UltraFeedback (raw or binarized)",
    "oasst": "OpenAssistant message trees", "label-studio": "Label Studio JSON export",
}


class PromptImportForm(ServiceErrorMixin, forms.Form):
    file = forms.FileField(
        help_text='JSONL (one {"prompt": ...} or {"messages": [...]} per line) or CSV with a prompt column.'
    )
    update = forms.BooleanField(
        required=False,
        label="Replace changed prompts",
        help_text="A line whose id exists with other content replaces that prompt, unless labelers have "
        "opened or annotated it. Unticked, such lines are only reported.",
    )
    format = forms.ChoiceField(
        required=False,
        choices=[("", "Detect from the file")]
        + [(name, IMPORT_FORMAT_LABELS.get(name, name)) for name in IMPORT_FORMATS],
        help_text="Which format the file is in; detected from its first line unless chosen.",
    )
    source = forms.CharField(
        required=False, max_length=100, label="Source of the labels",
        help_text="The external source imported labels are credited to (default: the format, e.g. hh-rlhf).",
    )
    hide_labels = forms.BooleanField(
        required=False, label="Hide imported labels and label again",
        help_text="Imported labels are kept but count toward no task, and are left out of exports.",
    )
