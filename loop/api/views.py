"""Generation jobs, A/B evaluations and the leaderboard. Members read; project admins start and cancel.

Each view checks access (404 for non-members, 403 for labelers on admin actions), reads its input,
calls one service or selector and returns its output. Values are checked by the services, which
name the field at fault; nothing is queued before they pass.
"""

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from annotation.api.permissions import project_for
from annotation.errors import InvalidInput
from annotation.ids import as_id
from annotation.roles import Action, require_anywhere
from loop import battles
from loop import evaluation as evaluations
from loop import generation
from training.api.views import model_or_400

# Serializers ------------------------------------------------------------------------------------


class GenerationStartSerializer(serializers.Serializer):
    """Documents the body; the service checks each value and names the field at fault."""

    model_version = serializers.IntegerField(help_text="A base, sft or policy model version id.")
    k = serializers.IntegerField(help_text="Responses per prompt, 2 to 8.")
    temperature = serializers.FloatField(required=False, default=1.0)
    top_p = serializers.FloatField(required=False, default=0.95)
    max_new_tokens = serializers.IntegerField(required=False, default=48)
    seed = serializers.IntegerField(required=False, default=0)
    prompt_ids = serializers.ListField(child=serializers.IntegerField(), required=False)
    prompt_count = serializers.IntegerField(required=False)


class GenerationJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.IntegerField(source="project_id")
    model_version = serializers.IntegerField(source="model_version_id")
    model_version_b = serializers.IntegerField(source="model_version_b_id", allow_null=True)
    evaluation = serializers.IntegerField(source="evaluation_id", allow_null=True)
    status = serializers.CharField()
    step = serializers.IntegerField()
    total_steps = serializers.IntegerField()
    progress = serializers.FloatField()
    k = serializers.IntegerField()
    temperature = serializers.FloatField()
    top_p = serializers.FloatField()
    max_new_tokens = serializers.IntegerField()
    seed = serializers.IntegerField()
    prompts = serializers.SerializerMethodField()
    tasks_created = serializers.IntegerField()
    responses_created = serializers.IntegerField()
    prompts_skipped = serializers.IntegerField()
    duplicates_dropped = serializers.IntegerField()
    error = serializers.CharField()
    log_tail = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_prompts(self, job) -> int:
        return len(job.prompt_ids)


class EvaluationStartSerializer(serializers.Serializer):
    project = serializers.IntegerField()
    model_a = serializers.IntegerField()
    model_b = serializers.IntegerField()
    prompt_ids = serializers.ListField(child=serializers.IntegerField(), required=False)
    prompt_count = serializers.IntegerField(required=False, help_text="Held-out prompts: unused ones first.")
    temperature = serializers.FloatField(required=False, default=0.7)
    top_p = serializers.FloatField(required=False, default=0.95)
    max_new_tokens = serializers.IntegerField(required=False, default=48)
    seed = serializers.IntegerField(required=False, default=0)


class EvaluationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.IntegerField(source="project_id")
    model_a = serializers.IntegerField(source="model_a_id")
    model_b = serializers.IntegerField(source="model_b_id")
    status = serializers.CharField()
    created_at = serializers.DateTimeField()


# Parsing ---------------------------------------------------------------------------------------------


def _value(data, name: str, default=None):
    """A body value, kept as sent: the service checks it and names the field."""
    value = data.get(name, default)
    if isinstance(value, str):  # a form post or a query string sends text
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                pass
    return value


def _body(request) -> dict:
    if not isinstance(request.data, dict) and not hasattr(request.data, "getlist"):
        raise InvalidInput("The body must be a JSON object.")
    return request.data


def _prompt_ids(data):
    value = data.get("prompt_ids")
    if value in (None, ""):
        return None
    return value


def _prompt_count(data):
    value = _value(data, "prompt_count")
    return None if value in (None, "") else value


# Views -----------------------------------------------------------------------------------------------


class GenerationStartApi(APIView):
    @extend_schema(request=GenerationStartSerializer, responses={202: GenerationJobSerializer})
    def post(self, request, project_id: int):
        """Queue a generation job (project admins and engineers): K responses per prompt, then comparison tasks."""
        project = project_for(request, project_id, Action.TRAIN)
        data = _body(request)
        if data.get("model_version") in (None, ""):
            raise InvalidInput("model_version is required: a base, sft or policy model id.", field="model_version")
        model = model_or_400(project, data.get("model_version"), "model_version")
        job = generation.generation_create(
            project=project, model_version=model, k=_value(data, "k", 4),
            temperature=_value(data, "temperature", 1.0), top_p=_value(data, "top_p", 0.95),
            max_new_tokens=_value(data, "max_new_tokens", 48), seed=_value(data, "seed", 0),
            prompt_ids=_prompt_ids(data), prompt_count=_prompt_count(data), created_by=request.user,
        )
        return Response(GenerationJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class GenerationJobListApi(APIView):
    pagination_class = api_settings.DEFAULT_PAGINATION_CLASS  # also tells the schema the list is paginated
    @extend_schema(responses=GenerationJobSerializer(many=True))
    def get(self, request):
        """Generation jobs of the projects where you may train, newest first (?project= filters)."""
        require_anywhere(user=request.user, action=Action.TRAIN)
        jobs = generation.generation_job_list_for_user(user=request.user)
        if request.query_params.get("project", "").isdigit():
            project_id = as_id(request.query_params["project"])  # None past bigint: no such project
            jobs = jobs.filter(project_id=project_id) if project_id else jobs.none()
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(jobs, request, view=self)
        return paginator.get_paginated_response(GenerationJobSerializer(page, many=True).data)


class GenerationJobDetailApi(APIView):
    @extend_schema(responses=GenerationJobSerializer)
    def get(self, request, job_id: int):
        """Status, progress (step of total), tasks created, prompts skipped, log tail and error."""
        job = generation.generation_job_get_for_user(user=request.user, job_id=job_id)
        return Response(GenerationJobSerializer(job).data)


class GenerationJobCancelApi(APIView):
    @extend_schema(request=None, responses=GenerationJobSerializer)
    def post(self, request, job_id: int):
        """Cancel a job (project admins and engineers): queued ends at once, running stops its sampler."""
        job = generation.generation_job_get_for_user(user=request.user, job_id=job_id)
        job = generation.generation_cancel(job=job)
        return Response(GenerationJobSerializer(job).data)


class EvaluationListCreateApi(APIView):
    pagination_class = api_settings.DEFAULT_PAGINATION_CLASS
    @extend_schema(responses=EvaluationSerializer(many=True))
    def get(self, request):
        """A/B evaluations of the projects where you may train, newest first."""
        require_anywhere(user=request.user, action=Action.TRAIN)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(evaluations.evaluation_list_for_user(user=request.user), request, view=self)
        return paginator.get_paginated_response(EvaluationSerializer(page, many=True).data)

    @extend_schema(request=EvaluationStartSerializer, responses={201: dict})
    def post(self, request):
        """Start an A/B evaluation (project admins and engineers): one answer per held-out prompt from each model."""
        data = _body(request)
        project_id = _value(data, "project")
        if not isinstance(project_id, int) or isinstance(project_id, bool):
            raise InvalidInput("project must be a project id.", field="project")
        project = project_for(request, project_id, Action.TRAIN)
        for name in ("model_a", "model_b"):
            if data.get(name) in (None, ""):
                raise InvalidInput(f"{name} is required: a base, sft or policy model id.", field=name)
        model_a = model_or_400(project, data.get("model_a"), "model_a")
        model_b = model_or_400(project, data.get("model_b"), "model_b")
        evaluation = evaluations.evaluation_create(
            project=project, model_a=model_a, model_b=model_b, prompt_ids=_prompt_ids(data),
            prompt_count=_prompt_count(data), created_by=request.user,
            temperature=_value(data, "temperature", 0.7), top_p=_value(data, "top_p", 0.95),
            max_new_tokens=_value(data, "max_new_tokens", 48), seed=_value(data, "seed", 0),
        )
        body = EvaluationSerializer(evaluation).data
        body["results"] = evaluations.evaluation_results(evaluation=evaluation)
        return Response(body, status=status.HTTP_201_CREATED)


class EvaluationDetailApi(APIView):
    @extend_schema(responses={200: dict})
    def get(self, request, evaluation_id: int):
        """The evaluation with its results: wins, losses, ties of A, the win rate and its 95% interval."""
        evaluation = evaluations.evaluation_get_for_user(user=request.user, evaluation_id=evaluation_id)
        body = EvaluationSerializer(evaluation).data
        body["results"] = evaluations.evaluation_results(evaluation=evaluation)
        return Response(body)


class EvaluationBattlesApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=list(battles.BATTLE_FORMATS), default="jsonl")],
        responses={(200, "application/x-ndjson"): str, (200, "application/json"): str},
    )
    def get(self, request, evaluation_id: int):
        """The battle log: one row per judged comparison (model_a, model_b, winner, judge, tstamp, question_id),
        as FastChat's arena statistics read it; JSON lines, or a JSON array with format=json."""
        evaluation = evaluations.evaluation_get_for_user(user=request.user, evaluation_id=evaluation_id)
        fmt = request.query_params.get("format") or "jsonl"
        if fmt not in battles.BATTLE_FORMATS:
            raise InvalidInput(f"format must be one of {', '.join(battles.BATTLE_FORMATS)}.", field="format")
        kind = "application/x-ndjson" if fmt == "jsonl" else "application/json"
        response = StreamingHttpResponse(battles.battle_chunks(evaluation=evaluation, fmt=fmt), content_type=kind)
        response["Content-Disposition"] = f'attachment; filename="evaluation-{evaluation.pk}-battles.{fmt}"'
        return response


class LeaderboardApi(APIView):
    @extend_schema(responses={200: dict})
    def get(self, request, project_id: int):
        """Every model version with responses in the project, ranked by Bradley-Terry over all comparisons."""
        project = project_for(request, project_id, Action.TRAIN)
        return Response({"project": project.pk, "models": evaluations.leaderboard(project=project)})

