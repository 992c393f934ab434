"""Forms of the project admin pages. They check types and shapes; the rules live in services."""

from django import forms
from django.db.models import Q

from .errors import ServiceError
from .models import Membership
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

    def __init__(self, *args, project=None, **kwargs):
        super().__init__(*args, **kwargs)
        if "reward_model" in self.fields:
            from training.models import ModelVersion

            scope = Q(project__isnull=True) | Q(project=project) if project is not None else Q(project__isnull=True)
            self.fields["reward_model"].queryset = ModelVersion.objects.filter(
                scope, kind=ModelVersion.Kind.REWARD
            ).order_by("-created_at", "-id")

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("A project needs a name.")
        return name

    def clean(self):
        cleaned = super().clean()
        if "review_rate" in self.fields and cleaned.get("review_rate") is None:
            cleaned.pop("review_rate", None)  # left blank: the rate stays as it is
        return cleaned


class ProjectCreateForm(ProjectSettingsForm):
    slug = forms.SlugField(
        max_length=200, required=False, help_text="Used in file names. Leave empty to derive it from the name."
    )
    reward_model = None  # a new project has no models yet
    review_rate = None  # set in the settings once the project has labelers
    field_order = ["name", "slug", "guidelines", "overlap", "lease_seconds"]


class MemberAddForm(ServiceErrorMixin, forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.LABELER)


class MemberRoleForm(ServiceErrorMixin, forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)


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
