"""Annotation API. Each view validates input, calls one service or selector, and returns its output."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import export_records, exporters, gold, importers, selectors, services
from annotation.errors import InvalidInput
from annotation.export_counts import export_counts
from annotation.export_filters import ExportFilters, export_filter_parameters
from annotation.roles import Action, can_create_projects

from . import gold_serializers, serializers
from .parsers import FormBodyParser, JSONBodyParser, MultiPartBodyParser
from .permissions import project_for


class ProjectListCreateApi(APIView):
    @extend_schema(responses=serializers.ProjectSerializer(many=True))
    def get(self, request):
        projects = list(selectors.project_list_for_user(user=request.user))
        roles = dict(request.user.memberships.values_list("project_id", "role"))
        return Response(serializers.ProjectSerializer(projects, many=True, context={"roles": roles}).data)

    @extend_schema(request=serializers.ProjectCreateSerializer, responses={201: serializers.ProjectSerializer})
    def post(self, request):
        """Create a project (users with the platform's create-project permission); you become its admin."""
        if not can_create_projects(request.user):
            raise PermissionDenied("You may not create projects: ask a superuser for the create-project permission.")
        data = serializers.ProjectCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project = services.project_create(created_by=request.user, **data.validated_data)
        body = serializers.ProjectSerializer(project, context={"roles": {project.pk: "admin"}}).data
        return Response(body, status=status.HTTP_201_CREATED)


class ProjectDetailApi(APIView):
    @extend_schema(responses=serializers.ProjectSerializer)
    def get(self, request, project_id: int):
        membership = selectors.membership_get(user=request.user, project_id=project_id)
        body = serializers.ProjectSerializer(membership.project, context={"roles": {project_id: membership.role}}).data
        body["progress"] = selectors.project_progress(project=membership.project)
        return Response(body)

    @extend_schema(request=serializers.ProjectUpdateSerializer, responses=serializers.ProjectSerializer)
    def patch(self, request, project_id: int):
        project = project_for(request, project_id, Action.MANAGE)
        data = serializers.ProjectUpdateSerializer(data=request.data, project=project)
        data.is_valid(raise_exception=True)
        project = services.project_update(project=project, **data.validated_data)
        return Response(serializers.ProjectSerializer(project, context={"roles": {project_id: "admin"}}).data)


class ProjectMembersApi(APIView):
    @extend_schema(request=serializers.MembershipSerializer, responses=serializers.MembershipSerializer)
    def post(self, request, project_id: int):
        project = project_for(request, project_id, Action.MANAGE)
        data = serializers.MembershipSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = get_user_model().objects.filter(username=data.validated_data["username"]).first()
        if user is None:
            raise InvalidInput("No user with that username.", field="username")
        membership = services.membership_set(project=project, user=user, role=data.validated_data["role"])
        return Response({"username": user.get_username(), "role": membership.role})


@importers.accepts_import_file
class ProjectImportApi(APIView):
    parser_classes = [MultiPartBodyParser, FormBodyParser]

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "mode": {"type": "string", "enum": list(importers.MODES), "default": "add"},
                    "format": {"type": "string", "enum": list(importers.FORMATS),
                               "description": "The file's format; detected from its first line when left out."},
                    "source": {"type": "string", "maxLength": importers.MAX_SOURCE_CHARS,
                               "description": "The external source imported labels are credited to "
                                              "(default: the format's name, e.g. hh-rlhf)."},
                    "labels": {"type": "string", "enum": list(importers.LABEL_MODES), "default": "use",
                               "description": "use: imported labels count toward done; hide: kept, labelled again."},
                },
            }
        },
        responses={200: dict, 413: dict},
    )
    def post(self, request, project_id: int):
        """Import prompts (JSONL or CSV). Atomic: one bad line rejects the file, naming each bad line.

        mode=add (the default) skips lines whose id exists and reports those whose content changed;
        mode=update replaces those prompts, except the ones labelers depend on (reported). A file
        over IMPORT_MAX_BYTES is a 413 that names the limit. Public formats (trl, hh-rlhf,
        ultrafeedback, oasst, label-studio) are detected or named with format=; their labels become
        annotations from the external source named by source=, counted (labels=use) or hidden (labels=hide).
        """
        project = project_for(request, project_id, Action.MANAGE)
        upload = request.FILES.get("file")
        if upload is None:
            raise InvalidInput("Upload the prompts as the multipart field 'file'.", field="file")
        result = importers.prompts_import(
            project=project, fileobj=upload, filename=upload.name, mode=request.data.get("mode") or "add",
            max_bytes=settings.IMPORT_MAX_BYTES, fmt=request.data.get("format") or None,
            source=request.data.get("source"), labels=request.data.get("labels"),
        )
        return Response(result.as_dict())


class ProjectExportApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=list(exporters.FORMATS), required=True),
            *export_filter_parameters(),
        ],
        responses={(200, "application/x-ndjson"): str},
    )
    def get(self, request, project_id: int):
        """Stream a JSONL export in a TRL format (sft, preference) or every annotation (raw).

        The quality filters (docs/quality.md, "Training on quality-filtered data") leave out gold
        tasks, unreviewed or flagged work and labelers below a competence; `consensus` gives one
        Dawid-Skene pair per comparison. A bad filter is a 400 naming it.
        """
        project = project_for(request, project_id, Action.EXPORT)
        fmt = request.query_params.get("format", "")
        filters = ExportFilters.from_mapping(request.query_params)
        filters = export_records.with_last_export(filters, project=project, fmt=fmt)
        lines = exporters.export_blocks(project=project, fmt=fmt, filters=filters)
        lines = export_records.recorded(lines, project=project, fmt=fmt, filters=filters, user=request.user)
        response = StreamingHttpResponse(lines, content_type="application/x-ndjson")
        response["Content-Disposition"] = f'attachment; filename="{project.slug}-{fmt}.jsonl"'
        return response


class ProjectExportCountsApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=list(exporters.FORMATS), required=True),
            *export_filter_parameters(),
        ],
        responses={200: serializers.ExportCountsSerializer},
    )
    def get(self, request, project_id: int):
        """How many lines (pairs for preference) the export keeps: in all, under each filter alone, and as chosen."""
        project = project_for(request, project_id, Action.EXPORT)
        fmt = request.query_params.get("format", "")
        filters = export_records.with_last_export(ExportFilters.from_mapping(request.query_params), project=project,
                                                  fmt=fmt)
        body = export_counts(project=project, fmt=fmt, filters=filters)
        return Response(body)


class TaskNextApi(APIView):
    @extend_schema(
        request=None,
        parameters=[OpenApiParameter("kind", str, enum=["demonstration", "comparison"])],
        responses={200: serializers.TaskSerializer, 204: None, 403: gold_serializers.NotQualifiedSerializer},
    )
    def post(self, request, project_id: int):
        """Claim the next task, or get back the one already leased. 204 when nothing is left.

        403 when the project's qualification stops the caller: held out, or still qualifying with
        no qualification task left (the body's `qualification` says which, and `detail` what to do).
        """
        project = project_for(request, project_id, Action.LABEL)
        task = services.task_claim_next(project=project, labeler=request.user, kind=request.query_params.get("kind"))
        if task is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        task.project = project
        return Response(selectors.task_payload(task=task, labeler=request.user, lease_expires_at=task.lease_expires_at))


class TaskDetailApi(APIView):
    @extend_schema(responses=serializers.TaskSerializer)
    def get(self, request, task_id: int):
        task = selectors.task_get_for_member(user=request.user, task_id=task_id)
        return Response(selectors.task_payload(task=task, labeler=request.user))


class AnnotationSubmitApi(APIView):
    parser_classes = [JSONBodyParser]

    @extend_schema(
        request=serializers.AnnotationInputSerializer, responses={201: gold_serializers.AnnotationSubmitOutSerializer}
    )
    def post(self, request, task_id: int):
        """Submit work on a task. Idempotent on client_id: a repeat returns the stored annotation (200).

        In a project's gold training mode, the answer to a gold task carries `gold`: the expected answer.
        """
        task = selectors.task_get_for_member(user=request.user, task_id=task_id)
        data = request.data if isinstance(request.data, dict) else {}
        annotation, created = services.annotation_submit(
            task=task,
            labeler=request.user,
            client_id=data.get("client_id"),
            data=data,
            time_spent_ms=data.get("time_spent_ms", 0),
        )
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(_with_gold_reveal(task, annotation), status=code)


def _with_gold_reveal(task, annotation) -> dict:
    """The annotation's body; in training mode a gold task's also shows the expected answer (gold.py)."""
    body = serializers.annotation_representation(annotation)
    if task.is_gold and task.project.gold_training_mode:
        body["gold"] = gold.gold_reveal(task=task, gold_correct=annotation.gold_correct)
    return body


class TaskSkipApi(APIView):
    parser_classes = [JSONBodyParser]

    @extend_schema(
        request=serializers.SkipInputSerializer, responses={201: gold_serializers.AnnotationSubmitOutSerializer}
    )
    def post(self, request, task_id: int):
        task = selectors.task_get_for_member(user=request.user, task_id=task_id)
        data = request.data if isinstance(request.data, dict) else {}
        annotation, created = services.task_skip(
            task=task,
            labeler=request.user,
            reason=data.get("reason", ""),
            client_id=data.get("client_id"),
            time_spent_ms=data.get("time_spent_ms", 0),
        )
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(_with_gold_reveal(task, annotation), status=code)


class TaskHeartbeatApi(APIView):
    @extend_schema(request=None, responses={200: dict})
    def post(self, request, task_id: int):
        """Extend the caller's lease while the task's page is open."""
        task = selectors.task_get_for_member(user=request.user, task_id=task_id)
        lease = services.lease_extend(task=task, labeler=request.user)
        return Response({"lease_expires_at": lease.expires_at.isoformat()})
