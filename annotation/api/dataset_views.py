"""The dataset directory export (a tar), its push to the Hugging Face Hub, and the pushes' status."""

from django.http import Http404, StreamingHttpResponse
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import dataset_archive, dataset_push, export_records, hub_push
from annotation.export_filters import ExportFilters, export_filter_parameters
from annotation.hf_dataset import DATASET_FORMATS, DEFAULT_LICENSE
from annotation.ids import as_id
from annotation.models import HubPush
from annotation.roles import Action

from .parsers import FormBodyParser, JSONBodyParser
from .permissions import project_for


class HubPushSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=HubPush.Kind.choices)
    project = serializers.IntegerField(allow_null=True)
    model = serializers.IntegerField(allow_null=True)
    repo_id = serializers.CharField()
    private = serializers.BooleanField()
    format = serializers.CharField()
    filters = serializers.DictField()
    license = serializers.CharField()
    status = serializers.ChoiceField(choices=HubPush.Status.choices)
    error = serializers.CharField(help_text="Why the push failed; empty unless it did.")
    url = serializers.CharField(help_text="The Hub repository's address once pushed.")
    rows = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class DatasetPushInputSerializer(serializers.Serializer):
    repo_id = serializers.CharField(help_text="The Hub dataset repository, owner/name.")
    token = serializers.CharField(help_text="A Hugging Face access token with write access; never stored.")
    format = serializers.ChoiceField(choices=list(DATASET_FORMATS))
    license = serializers.CharField(required=False, default=DEFAULT_LICENSE)
    private = serializers.BooleanField(required=False, default=True)


class ProjectDatasetExportApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=list(DATASET_FORMATS), required=True),
            OpenApiParameter("license", str, description=f"The card's license (default {DEFAULT_LICENSE})."),
            *export_filter_parameters(),
        ],
        responses={(200, "application/x-tar"): bytes},
    )
    def get(self, request, project_id: int):
        """A Hugging Face dataset directory as a tar: data/train-*.parquet and a dataset card README.md.

        `datasets.load_dataset` loads the extracted folder. The same quality filters as the JSONL
        export apply; a bad format, filter or license is a 400 naming it.
        """
        project = project_for(request, project_id, Action.EXPORT)
        fmt = request.query_params.get("format", "")
        filters = export_records.with_last_export(ExportFilters.from_mapping(request.query_params), project=project,
                                                  fmt=fmt)
        chunks = dataset_archive.dataset_archive_chunks(
            project=project, fmt=fmt, filters=filters, license=request.query_params.get("license"),
        )
        response = StreamingHttpResponse(chunks, content_type="application/x-tar")
        name = dataset_archive.dataset_archive_name(project=project, fmt=fmt)
        response["Content-Disposition"] = f'attachment; filename="{name}.tar"'
        return response


@method_decorator(sensitive_post_parameters("token"), name="dispatch")
class ProjectHubPushApi(APIView):
    parser_classes = [JSONBodyParser, FormBodyParser]

    @extend_schema(responses=HubPushSerializer(many=True))
    def get(self, request, project_id: int):
        """The project's latest dataset pushes, newest first."""
        project = project_for(request, project_id, Action.EXPORT)
        pushes = hub_push.dataset_pushes(project=project, limit=50)
        return Response([hub_push.hub_push_payload(push) for push in pushes])

    @extend_schema(request=DatasetPushInputSerializer, responses={202: HubPushSerializer})
    def post(self, request, project_id: int):
        """Push the project's dataset directory to the Hub, on a worker. 202 with the push; poll it for its status.

        Takes the export's quality filters too. The token is handed to the worker and never stored.
        """
        project = project_for(request, project_id, Action.EXPORT)
        data = request.data if hasattr(request.data, "get") else {}
        fmt = data.get("format") or ""
        filters = export_records.with_last_export(ExportFilters.from_mapping(data), project=project, fmt=fmt)
        push = dataset_push.dataset_push_start(
            project=project, fmt=fmt, filters=filters,
            license=data.get("license"), repo_id=data.get("repo_id"), token=data.get("token"),
            private=data.get("private"), created_by=request.user,
        )
        return Response(hub_push.hub_push_payload(push), status=status.HTTP_202_ACCEPTED)


class HubPushDetailApi(APIView):
    @extend_schema(responses=HubPushSerializer)
    def get(self, request, push_id: int):
        """One push's status: dataset pushes for the project's exporters, model pushes for those who may train."""
        pk = as_id(push_id)
        push = hub_push.hub_push_list_for_user(user=request.user).filter(pk=pk).first() if pk is not None else None
        if push is None:
            raise Http404("No such push.")
        return Response(hub_push.hub_push_payload(push))

