"""The OpenAPI description of a training run's config, read from the pipelines' field metadata.

POST /api/training-runs/ takes a `kind` and a `config` whose fields depend on it. drf-spectacular
cannot see into a JSONField, so the body is documented as a union of one body per kind,
discriminated by `kind`, and each kind's config is a component (SftRunConfig, RewardRunConfig,
DpoRunConfig, RlhfRunConfig) with every field's type, default, help, minimum/maximum (exclusive
where the bound is excluded), enum and list length. The numbers come from
training.services.pipeline_fields, the same reading of the metadata that validates the request,
so the schema cannot drift from what the API accepts.

These classes only describe: the view still parses the body with TrainingRunStartSerializer and
run_config_validate decides.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from training import services
from training.models import TrainingRun

JSON_TYPES = {"int": "integer", "float": "number", "bool": "boolean", "str": "string"}


def _range(spec: dict) -> dict:
    schema: dict = {}
    if "min" in spec:
        schema["minimum"] = spec["min"]
        if spec.get("exclusive_min"):
            schema["exclusiveMinimum"] = True  # OpenAPI 3.0: a flag beside the bound
    if "max" in spec:
        schema["maximum"] = spec["max"]
        if spec.get("exclusive_max"):
            schema["exclusiveMaximum"] = True
    return schema


def field_schema(spec: dict) -> dict:
    """One config field as an OpenAPI 3.0 schema object."""
    json_type = JSON_TYPES.get(spec["type"])
    schema: dict = {}
    if spec["type"] == "list":
        schema = {"type": "array", "items": {"type": "string"}}
        if spec.get("max_items") is not None:
            schema["maxItems"] = spec["max_items"]
    elif json_type:
        schema["type"] = json_type
    if spec.get("choices"):
        schema["enum"] = list(spec["choices"]) + ([None] if spec.get("nullable") else [])
    elif spec.get("also") and json_type:
        # max_steps: -1, or a number in the range; the two never overlap, so oneOf is exact.
        schema["oneOf"] = [{"type": json_type, "enum": list(spec["also"])},
                           {"type": json_type, **_range(spec)}]
    elif json_type:
        schema.update(_range(spec))
    if spec.get("nullable"):
        schema["nullable"] = True
    schema["default"] = spec.get("default")
    description = spec.get("help", "")
    if spec.get("bounds"):
        description = f"{description} Allowed: {spec['bounds']}.".strip()
    if description:
        schema["description"] = description
    return schema


def config_schema(kind: str) -> dict:
    """The config object of a run kind: every user-settable field, nothing else."""
    fields = services.pipeline_fields(kind=kind)
    return {
        "type": "object",
        "description": f"Config of a {kind} run. Every field is optional; a missing one takes its default. "
                       "Paths (model, data, output) are set by the platform.",
        "properties": {name: field_schema(spec) for name, spec in fields.items()},
        "additionalProperties": False,
    }


class PipelineConfigField(serializers.JSONField):
    """The `config` of one run kind, for the schema only."""

    def __init__(self, *, kind: str, **kwargs):
        self.kind = kind
        super().__init__(**kwargs)


class RunKindField(serializers.CharField):
    """`kind` fixed to one value: the discriminator of the start body."""

    def __init__(self, *, kind: str, **kwargs):
        self.kind = kind
        super().__init__(**kwargs)


class PipelineConfigFieldExtension(OpenApiSerializerFieldExtension):
    target_class = PipelineConfigField

    def get_name(self) -> str:
        return f"{self.target.kind.capitalize()}RunConfig"

    def map_serializer_field(self, auto_schema, direction) -> dict:
        return config_schema(self.target.kind)


class RunKindFieldExtension(OpenApiSerializerFieldExtension):
    target_class = RunKindField

    def map_serializer_field(self, auto_schema, direction) -> dict:
        return {"type": "string", "enum": [self.target.kind]}


def start_serializer(kind: str, base: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The start body of one kind: `base`'s fields with `kind` fixed and `config` described."""
    attrs: dict = {
        "__module__": __name__,
        "__doc__": f"Start a {kind} run.",
        "kind": RunKindField(kind=kind),
        "config": PipelineConfigField(
            kind=kind, required=False, help_text=f"The {kind} pipeline's config; see {kind.capitalize()}RunConfig."
        ),
    }
    if kind == TrainingRun.Kind.RLHF:
        attrs["reward_model"] = serializers.IntegerField(help_text="Model version id of a reward model.")
        attrs["data"] = None  # rlhf trains on prompts: no quality filters
    else:
        attrs["reward_model"] = None  # only rlhf takes one; the API refuses it for the other kinds
    return type(f"{kind.capitalize()}TrainingRunStartSerializer", (base,), attrs)


def training_run_start_schema(base: type[serializers.Serializer]) -> PolymorphicProxySerializer:
    """The documented body of POST /api/training-runs/: one start body per kind, chosen by `kind`."""
    return PolymorphicProxySerializer(
        component_name="TrainingRunStart",
        serializers={kind: start_serializer(kind, base) for kind in TrainingRun.Kind.values},
        resource_type_field_name="kind",
    )


_ANY = {"description": "Any JSON value.", "nullable": True}
# The body of GET /api/training-runs/defaults/<kind>/: {field name: what pipeline_fields says of it}.
PIPELINE_DEFAULTS_SCHEMA = {
    "type": "object",
    "description": "The config fields a user may set for the kind, by name.",
    "additionalProperties": {
        "type": "object",
        "required": ["type", "nullable", "default", "help"],
        "properties": {
            "type": {"type": "string", "enum": ["int", "float", "bool", "str", "list", "json"]},
            "nullable": {"type": "boolean"},
            "default": _ANY,
            "help": {"type": "string"},
            "choices": {"type": "array", "items": _ANY, "description": "The allowed values."},
            "min": {"type": "number", "description": "Lower bound, inclusive unless exclusive_min."},
            "max": {"type": "number", "description": "Upper bound, inclusive unless exclusive_max."},
            "exclusive_min": {"type": "boolean"},
            "exclusive_max": {"type": "boolean"},
            "also": {"type": "array", "items": _ANY, "description": "Values allowed outside the range."},
            "max_items": {"type": "integer", "description": "The longest list allowed."},
            "bounds": {"type": "string", "description": "The allowed values in words."},
        },
    },
}
