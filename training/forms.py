"""The new-run form: the run's choices, plus the pipeline's config fields parsed by their type.

The form only turns text into JSON values. Whether a value is acceptable (a positive learning
rate, a reward model for rlhf, ...) is decided by training.services.run_create, whose
InvalidInput errors are attached to the field they name. The inputs show the same bounds that
decide it (the pipelines' field metadata, through pipeline_fields): min/max/step on numbers, a
select for choices, and the allowed values in words under each field.
"""

import json

from django import forms
from django.db.models import Q

from annotation.errors import ServiceError
from annotation.models import Project

from .models import ModelVersion, TrainingRun


def models_q_for_project(project_id):
    """A project's own models and the global ones (training/registry.py's rule), as a filter."""
    return Q(project_id=project_id) | Q(project__isnull=True)

CONFIG_PREFIX = "config-"
DATA_PREFIX = "data_"
DATA_FILTERS = ("exclude_gold", "reviewed_only", "exclude_flagged", "min_competence", "consensus", "ties")
# The config fields most runs change; the other shared ones are shown under "Advanced".
ESSENTIAL_FIELDS = ("preset", "max_steps", "num_train_epochs", "learning_rate", "batch_size", "num_gpus", "distributed")
CONFIG_GROUPS = (
    ("pipeline", "Pipeline"),
    ("essential", "Training"),
    ("advanced", "Advanced"),
)


def config_groups(defaults: dict[str, dict]) -> dict[str, dict[str, list[str]]]:
    """{kind: {group: [field, ...]}}: a kind's own fields, the essential shared ones, the other shared ones."""
    shared = set.intersection(*(set(fields) for fields in defaults.values())) if defaults else set()
    groups = {}
    for kind, fields in defaults.items():
        groups[kind] = {
            "pipeline": [name for name in fields if name not in shared],
            "essential": [name for name in ESSENTIAL_FIELDS if name in fields],
            "advanced": [name for name in fields if name in shared and name not in ESSENTIAL_FIELDS],
        }
    return groups


class ModelSelect(forms.Select):
    """A model select whose options carry their model's project (empty: a global model).

    static/js/model_filter.js then shows, for the form's chosen project, its own models and the
    global ones only: the models its runs may use. The server checks the same rule regardless.
    """

    def __init__(self, attrs=None):
        super().__init__({"data-models-of": "project", **(attrs or {})})

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex=subindex, attrs=attrs)
        instance = getattr(value, "instance", None)
        if instance is not None:
            option["attrs"]["data-project"] = str(instance.project_id or "")
            option["attrs"]["data-kind"] = instance.kind  # a select with data-fits shows only the kinds that fit
        return option


class ModelVersionChoiceField(forms.ModelChoiceField):
    widget = ModelSelect

    def label_from_instance(self, obj: ModelVersion) -> str:
        scope = "" if obj.project_id else ", global"
        return f"{obj.name} ({obj.get_kind_display()}{scope})"


def config_input_kind(spec: dict) -> str:
    """How a config field is edited: choice, checkbox, tristate (bool or null), number, json or text."""
    type_name = str(spec.get("type", "")).lower()
    if spec.get("choices"):
        return "choice"
    if type_name == "bool":
        return "tristate" if spec.get("nullable") else "checkbox"
    if type_name in ("int", "float"):
        return "number"
    if type_name in ("list", "json", "dict"):
        return "json"
    return "text"


def config_value_to_text(value) -> str:
    """A config value as the text an input shows (the inverse of parse_config_value)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    if isinstance(value, float) and "e-" in repr(value) and value > 1e-12:
        return f"{value:.16f}".rstrip("0")  # 1e-05 reads as 0.00001, as the page's script writes it
    return str(value)


def number_attrs(spec: dict) -> dict[str, str]:
    """min, max and step for a number input. HTML has no exclusive bound or hole (max_steps skips 0),
    so the inputs are a guide and the server has the last word."""
    attrs = {"step": "1" if spec.get("type") == "int" else "any"}
    lows = [v for v in [spec.get("min"), *spec.get("also", [])] if isinstance(v, (int, float))]
    highs = [v for v in [spec.get("max"), *spec.get("also", [])] if isinstance(v, (int, float))]
    if lows and spec.get("min") is not None:
        attrs["min"] = config_value_to_text(min(lows))
    if highs and spec.get("max") is not None:
        attrs["max"] = config_value_to_text(max(highs))
    return attrs


def parse_config_value(raw, *, spec: dict):
    """Text from the form as the JSON value the pipeline's field asks for.

    Text that does not parse is passed on as it is, so that run_create rejects it with a
    message that names the field and the expected type.
    """
    kind = config_input_kind(spec)
    type_name = str(spec.get("type", "")).lower()
    raw = "" if raw is None else str(raw).strip()
    if kind == "checkbox":
        return raw.lower() in ("on", "true", "1")
    if kind == "tristate":
        return {"true": True, "false": False}.get(raw.lower())
    if raw == "" and spec.get("nullable"):
        return None
    if kind == "json":
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):  # run_create names the field (type, or nesting too deep)
            return raw
    if kind == "number":
        for convert in ((int, float) if type_name == "int" else (float,)):
            try:
                return convert(raw)
            except ValueError:
                continue
        return raw
    return raw


class RunForm(forms.Form):
    kind = forms.ChoiceField(choices=TrainingRun.Kind.choices, initial=TrainingRun.Kind.SFT)
    project = forms.ModelChoiceField(queryset=Project.objects.none(), empty_label="Choose a project")
    base_model = ModelVersionChoiceField(queryset=ModelVersion.objects.none(), empty_label="Choose a model")
    reward_model = ModelVersionChoiceField(
        queryset=ModelVersion.objects.none(), required=False, empty_label="Choose a reward model",
        help_text="RLHF optimises the policy against this reward model.",
    )
    # The run's `data` section: the quality filters of its snapshot (annotation/export_filters.py).
    # Parsed and checked by run_create like the API's; the names are the filters' own.
    data_exclude_gold = forms.BooleanField(required=False, label="Leave out gold tasks")
    data_reviewed_only = forms.BooleanField(
        required=False, label="Only work a reviewer accepted, and reviewers' corrections"
    )
    data_exclude_flagged = forms.BooleanField(
        required=False, label="Leave out work the quality check flagged, unless a reviewer accepted it"
    )
    data_min_competence = forms.CharField(
        required=False, label="Minimum labeler competence (0 to 1)",
        widget=forms.NumberInput(attrs={"min": "0", "max": "1", "step": "0.05", "placeholder": "any"}),
    )
    data_consensus = forms.ChoiceField(
        required=False, label="Preference pairs",
        choices=[("", "Every labeler's pairs"), ("margin", "One consensus pair per comparison, confidence as margin"),
                 ("weight", "One consensus pair per comparison, confidence as a weight")],
    )
    data_ties = forms.BooleanField(
        required=False,
        label="Also tied responses, as a pair each way with margin 0 (the model learns to score them alike)",
    )

    def __init__(self, *args, projects, models, defaults: dict[str, dict], initial_config: dict | None = None,
                 **kwargs):
        from .services import BASE_KINDS  # the services' rule: which models a run of each kind starts from

        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = projects
        self.fields["base_model"].queryset = models
        self.fields["reward_model"].queryset = models.filter(kind=ModelVersion.Kind.REWARD)
        # The base model menu offers, for the chosen kind of run, only the models it may start from
        # (static/js/model_filter.js reads data-fits); the server refuses the others regardless.
        self.fields["base_model"].widget.attrs["data-fits"] = json.dumps(
            {kind: sorted(allowed) for kind, allowed in BASE_KINDS.items()}
        )
        self.defaults = defaults
        self.initial_config = dict(initial_config or {})  # "New run like this": the run's own settings
        self.config_errors: dict[str, list[str]] = {}
        if not self.is_bound and not self.initial.get("base_model"):
            self._preselect_only_model(models, BASE_KINDS.get(self.selected_kind, ()), projects)

    def _preselect_only_model(self, models, kinds, projects) -> None:
        """With one project to train in and one model that fits, that model is chosen already."""
        project = self.initial.get("project")
        if not project and projects.count() == 1:
            project = projects.first().pk
            self.initial["project"] = project
        if not project:
            return
        fitting = list(models.filter(kind__in=kinds).filter(
            models_q_for_project(project)).values_list("pk", flat=True)[:2])
        if len(fitting) == 1:
            self.initial["base_model"] = fitting[0]

    def check_config(self) -> bool:
        """Every config problem at once, under its field; True when there is none."""
        from .services import run_config_problems

        for name, message in run_config_problems(kind=self.selected_kind, config=self.config()).items():
            if name in self.defaults.get(self.selected_kind, {}):
                self.config_errors.setdefault(name, []).append(message[:1].upper() + message[1:] + ".")
            else:
                self.add_error(None, f"config.{name}: {message}.")
        return not self.config_errors and not self.non_field_errors()

    @property
    def selected_kind(self) -> str:
        kind = self.data.get("kind") if self.is_bound else self.initial.get("kind")
        return kind if kind in self.defaults else TrainingRun.Kind.SFT

    def config(self) -> dict:
        """The submitted config of the selected kind, every field present, values parsed by type."""
        schema = self.defaults.get(self.selected_kind, {})
        config = {}
        for name, spec in schema.items():
            raw = self.data.get(CONFIG_PREFIX + name)
            if raw is None:
                config[name] = spec.get("default")
            else:
                config[name] = parse_config_value(raw, spec=spec)
        return config

    def data_filters(self) -> dict | None:
        """The chosen quality filters as run_create's `data` (None for rlhf, which trains on prompts)."""
        if self.selected_kind == TrainingRun.Kind.RLHF:
            return None
        data = {}
        for name in DATA_FILTERS:
            value = self.cleaned_data.get(DATA_PREFIX + name)
            if value not in (None, "", False):
                data[name] = value
        if self.selected_kind == TrainingRun.Kind.SFT:
            data.pop("consensus", None)
            data.pop("ties", None)
        return data

    def config_sections(self) -> list[dict]:
        """The selected kind's config rows in their groups (a group with an error is flagged, to open it)."""
        groups = config_groups(self.defaults).get(self.selected_kind, {})
        rows = {row["name"]: row for row in self.config_rows()}
        sections = []
        for key, title in CONFIG_GROUPS:
            members = [rows[name] for name in groups.get(key, []) if name in rows]
            sections.append({
                "key": key, "title": title, "rows": members,
                "has_errors": any(row["errors"] for row in members),
            })
        return sections

    def config_rows(self) -> list[dict]:
        """What the template shows for each config field of the selected kind."""
        schema = self.defaults.get(self.selected_kind, {})
        rows = []
        for name, spec in schema.items():
            input_kind = config_input_kind(spec)
            if self.is_bound:
                raw = self.data.get(CONFIG_PREFIX + name)
                if raw is None:
                    value = config_value_to_text(spec.get("default"))
                elif input_kind == "checkbox":
                    value = "true" if raw in ("on", "true", "1") else "false"
                else:
                    value = raw
            elif name in self.initial_config:
                value = config_value_to_text(self.initial_config[name])
            else:
                value = config_value_to_text(spec.get("default"))
            rows.append({
                "name": name,
                "input_name": CONFIG_PREFIX + name,
                "type": spec.get("type", "") + (" or null" if spec.get("nullable") else ""),
                "choices": [config_value_to_text(choice) for choice in spec.get("choices") or []],
                "nullable": bool(spec.get("nullable")),
                "help": spec.get("help", ""),
                "bounds": spec.get("bounds", ""),
                "number": number_attrs(spec) if input_kind == "number" else {},
                "default": config_value_to_text(spec.get("default")),
                "input": input_kind,
                "value": value,
                "errors": self.config_errors.get(name, []),
            })
        return rows

    def add_service_error(self, error: ServiceError) -> None:
        """Show a run_create error next to the field it names (a form field or a config field)."""
        name = (error.field or "").removeprefix("config.").removeprefix("config__").removeprefix(CONFIG_PREFIX)
        if name.startswith("data.") and DATA_PREFIX + name.removeprefix("data.") in self.fields:
            self.add_error(DATA_PREFIX + name.removeprefix("data."), error.message)
        elif name in self.fields:
            self.add_error(name, error.message)
        elif name in self.defaults.get(self.selected_kind, {}):
            # Shown under the field itself, so "config.learning_rate: must be positive." reads "Must be positive."
            message = error.message.removeprefix(f"config.{name}: ").removeprefix(f"{name}: ")
            self.config_errors.setdefault(name, []).append(message[:1].upper() + message[1:])
        else:
            self.add_error(None, error.message)

    @property
    def has_errors(self) -> bool:
        return bool(self.errors or self.config_errors)
