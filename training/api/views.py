"""Training API. Each view checks access, calls one service or selector, and returns its output."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from annotation.api.permissions import project_for
from annotation.errors import InvalidInput
from annotation.roles import Action, project_ids_for, require_anywhere
from training import memory_estimates, registry, selectors, services, staleness

from . import serializers


def model_or_400(project, model_id, field: str):
    """A model id from a request body, as a model the project may use; else the same 400 for any id."""
    model = registry.model_for_project(project=project, model_id=model_id)
    if model is None:
        raise InvalidInput(registry.model_unusable_message(field=field, value=model_id), field=field)
    return model


class ModelListCreateApi(APIView):
    pagination_class = api_settings.DEFAULT_PAGINATION_CLASS  # also tells the schema the list is paginated
    @extend_schema(responses=serializers.ModelVersionSerializer(many=True))
    def get(self, request):
        """Models of the projects where you may train, plus the global base models."""
        if not request.user.is_superuser:
            require_anywhere(user=request.user, action=Action.TRAIN)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.model_list_for_user(user=request.user), request, view=self)
        checks = staleness.reward_checks_for_models(
            model_ids=[m.pk for m in page if m.kind == "reward"],
            project_ids=project_ids_for(user=request.user, action=Action.TRAIN),
        )
        data = serializers.ModelVersionSerializer(page, many=True, context={"reward_checks": checks}).data
        return paginator.get_paginated_response(data)

    @extend_schema(request=serializers.ModelRegisterSerializer, responses={201: serializers.ModelVersionSerializer})
    def post(self, request):
        """Register a hub id, or a directory under a model root, as a model of a project (nothing is read or
        downloaded). Superusers may leave out the project to register a global base model."""
        data = serializers.ModelRegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        project = None
        if values.get("project") is not None:
            project = project_for(request, values["project"], Action.TRAIN)
        elif not request.user.is_superuser:
            raise InvalidInput("Name a project you train in; only superusers register global models.", field="project")
        parent = None
        if values.get("parent") is not None:
            parent = (
                model_or_400(project, values["parent"], "parent") if project is not None
                else registry.global_model_or_none(values["parent"])
            )
            if parent is None:
                raise InvalidInput(registry.model_unusable_message(field="parent", value=values["parent"]), field="parent")
        model = registry.model_register(
            name=values["name"], kind=values["kind"], path=values["path"], parent=parent, project=project,
            registered_by=request.user,
        )
        return Response(serializers.ModelVersionSerializer(model).data, status=status.HTTP_201_CREATED)


class TrainingRunListCreateApi(APIView):
    pagination_class = api_settings.DEFAULT_PAGINATION_CLASS
    @extend_schema(responses=serializers.TrainingRunSerializer(many=True))
    def get(self, request):
        """Runs of the projects where you may train, newest first."""
        require_anywhere(user=request.user, action=Action.TRAIN)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.run_list_for_user(user=request.user), request, view=self)
        return paginator.get_paginated_response(serializers.TrainingRunSerializer(page, many=True).data)

    @extend_schema(request=serializers.TRAINING_RUN_START_SCHEMA, responses={201: serializers.TrainingRunDetailSerializer})
    def post(self, request):
        """Start a run (project admins and engineers). Everything is checked before anything is queued."""
        data = serializers.TrainingRunStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        project = project_for(request, values["project"], Action.TRAIN)
        base_model = model_or_400(project, values["base_model"], "base_model")
        reward_model = None
        if values.get("reward_model") is not None:
            reward_model = model_or_400(project, values["reward_model"], "reward_model")
        run = services.run_create(
            kind=values["kind"], project=project, base_model=base_model, reward_model=reward_model,
            config=values.get("config", {}), created_by=request.user, data=values.get("data"),
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
        """Cancel a run (project admins and engineers): queued ends at once, running stops its pipeline."""
        run = selectors.run_get_for_user(user=request.user, run_id=run_id)
        run = services.run_cancel(run=run)
        run = selectors.run_get_for_user(user=request.user, run_id=run.pk)
        return Response(serializers.TrainingRunSerializer(run).data)


class TrainingRunResumeApi(APIView):
    @extend_schema(request=None, responses=serializers.TrainingRunSerializer)
    def post(self, request, run_id: int):
        """Queue a failed or cancelled run again; it resumes from its last intact checkpoint (409 otherwise)."""
        run = selectors.run_get_for_user(user=request.user, run_id=run_id)
        services.run_resume(run=run, by=request.user)
        return Response(serializers.TrainingRunSerializer(selectors.run_get_for_user(user=request.user, run_id=run.pk)).data)


class TrainingRunRetryApi(APIView):
    @extend_schema(request=None, responses={201: serializers.TrainingRunSerializer})
    def post(self, request, run_id: int):
        """Start a failed or cancelled run again from scratch, as a new run on the same snapshot (409 otherwise)."""
        run = selectors.run_get_for_user(user=request.user, run_id=run_id)
        retry = services.run_retry(run=run, created_by=request.user)
        body = serializers.TrainingRunSerializer(selectors.run_get_for_user(user=request.user, run_id=retry.pk)).data
        return Response(body, status=status.HTTP_201_CREATED)


class PipelineDefaultsApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("kind", str, OpenApiParameter.PATH, enum=list(services.KINDS))],
        responses={200: serializers.PIPELINE_DEFAULTS_SCHEMA},
    )
    def get(self, request, kind: str):
        """The config fields a user may set for a run kind, with defaults and help."""
        require_anywhere(user=request.user, action=Action.TRAIN)
        return Response(selectors.pipeline_defaults(kind=kind))


class RunMemoryEstimateApi(APIView):
    @extend_schema(request=serializers.MemoryEstimateRequestSerializer,
                   responses={200: serializers.MemoryEstimateSerializer})
    def post(self, request):
        """Estimated memory per GPU of a run of this model and config (its preset applied), without starting it."""
        data = serializers.MemoryEstimateRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        project = project_for(request, values["project"], Action.TRAIN)
        base_model = model_or_400(project, values["base_model"], "base_model")
        return Response(memory_estimates.run_memory_estimate(
            kind=values["kind"], base_model=base_model, config=values.get("config") or {}))


class RewardChecksApi(APIView):
    @extend_schema(responses=serializers.RewardCheckSerializer(many=True))
    def get(self, request, project_id: int):
        """Is each reward model of the project still right? The last check of each (never-checked ones left out)."""
        project = project_for(request, project_id, Action.TRAIN)
        rows = [row["check"] for row in staleness.reward_checks_for_project(project=project) if row["check"]]
        return Response(serializers.RewardCheckSerializer(rows, many=True).data)

    @extend_schema(request=None, responses={202: serializers.RewardCheckSerializer(many=True)})
    def post(self, request, project_id: int):
        """Queue the check of each reward model of the project that is not being checked already (gpu queue)."""
        project = project_for(request, project_id, Action.TRAIN)
        queued = staleness.reward_checks_schedule_project(project=project)
        rows = [staleness.check_summary(check) for check in queued]
        return Response(serializers.RewardCheckSerializer(rows, many=True).data, status=status.HTTP_202_ACCEPTED)
