"""Training API. Each view checks access, calls one service or selector, and returns its output."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from annotation.api.permissions import member_project
from annotation.errors import InvalidInput
from training import selectors, services

from . import serializers


def _model_or_400(request, model_id, field: str):
    model = selectors.model_get_for_user(user=request.user, model_id=model_id)
    if model is None:
        raise InvalidInput(f"No model with id {model_id!r} that you may use.", field=field)
    return model


class ModelListCreateApi(APIView):
    @extend_schema(responses=serializers.ModelVersionSerializer(many=True))
    def get(self, request):
        """Models of your projects, plus the global base models."""
        paginator = api_settings.DEFAULT_PAGINATION_CLASS()
        page = paginator.paginate_queryset(selectors.model_list_for_user(user=request.user), request, view=self)
        return paginator.get_paginated_response(serializers.ModelVersionSerializer(page, many=True).data)

    @extend_schema(request=serializers.ModelRegisterSerializer, responses={201: serializers.ModelVersionSerializer})
    def post(self, request):
        """Register a hub id or a directory as a model version (nothing is downloaded)."""
        data = serializers.ModelRegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        project = None
        if values.get("project") is not None:
            project = member_project(request, values["project"], admin=True)
        elif not request.user.is_staff:
            raise InvalidInput("Name a project you administer; only staff register global models.", field="project")
        parent = _model_or_400(request, values["parent"], "parent") if values.get("parent") is not None else None
        model = services.model_register(
            name=values["name"], kind=values["kind"], path=values["path"], parent=parent, project=project
        )
        return Response(serializers.ModelVersionSerializer(model).data, status=status.HTTP_201_CREATED)


class TrainingRunListCreateApi(APIView):
    @extend_schema(responses=serializers.TrainingRunSerializer(many=True))
    def get(self, request):
        """Runs of your projects, newest first."""
        paginator = api_settings.DEFAULT_PAGINATION_CLASS()
        page = paginator.paginate_queryset(selectors.run_list_for_user(user=request.user), request, view=self)
        return paginator.get_paginated_response(serializers.TrainingRunSerializer(page, many=True).data)

    @extend_schema(request=serializers.TrainingRunStartSerializer, responses={201: serializers.TrainingRunDetailSerializer})
    def post(self, request):
        """Start a run (project admins). Everything is checked before anything is queued."""
        data = serializers.TrainingRunStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        project = member_project(request, values["project"], admin=True)
        base_model = _model_or_400(request, values["base_model"], "base_model")
        reward_model = None
        if values.get("reward_model") is not None:
            reward_model = _model_or_400(request, values["reward_model"], "reward_model")
        run = services.run_create(
            kind=values["kind"], project=project, base_model=base_model, reward_model=reward_model,
            config=values.get("config", {}), created_by=request.user,
        )
        run = selectors.run_get_for_user(user=request.user, run_id=run.pk)
        body = serializers.TrainingRunDetailSerializer(run, context={"metrics": {}}).data
        return Response(body, status=status.HTTP_201_CREATED)


class TrainingRunDetailApi(APIView):
    @extend_schema(responses=serializers.TrainingRunDetailSerializer)
    def get(self, request, run_id: int):
        """Status, progress, metric history {name: [[step, value], ...]}, log tail and error."""
        run = selectors.run_get_for_user(user=request.user, run_id=run_id)
        metrics = selectors.run_metric_series(run=run)
        return Response(serializers.TrainingRunDetailSerializer(run, context={"metrics": metrics}).data)


class TrainingRunCancelApi(APIView):
    @extend_schema(request=None, responses=serializers.TrainingRunSerializer)
    def post(self, request, run_id: int):
        """Cancel a run (project admins): queued ends at once, running stops its pipeline."""
        run = selectors.run_get_for_user(user=request.user, run_id=run_id)
        member_project(request, run.project_id, admin=True)
        run = services.run_cancel(run=run)
        run = selectors.run_get_for_user(user=request.user, run_id=run.pk)
        return Response(serializers.TrainingRunSerializer(run).data)


class PipelineDefaultsApi(APIView):
    @extend_schema(responses={200: dict})
    def get(self, request, kind: str):
        """The config fields a user may set for a run kind, with defaults and help."""
        return Response(selectors.pipeline_defaults(kind=kind))
