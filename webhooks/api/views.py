"""A project's webhook endpoints and their delivery log. Project admins only (the MANAGE action):
another project's admin gets 404, a labeler or engineer of the project 403.

Each view checks access, reads its input, calls one service or selector and returns its output.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from annotation.api.permissions import project_for
from annotation.errors import InvalidInput
from annotation.ids import as_id
from annotation.roles import Action
from webhooks import selectors, services

from . import serializers

FIELDS = ("url", "events", "description", "active")


def _changes(request) -> dict:
    """The fields the body sends, as sent: the service checks each and names the one at fault."""
    data = request.data
    if not isinstance(data, dict) and not hasattr(data, "getlist"):
        raise InvalidInput("The body must be a JSON object.")
    changes = {}
    for name in data:
        if name not in FIELDS:
            raise InvalidInput(f"Unknown field {str(name)[:50]!r}; send {', '.join(FIELDS)}.", field=str(name)[:50])
    for name in FIELDS:
        if name not in data:
            continue
        value = data.getlist(name) if name == "events" and hasattr(data, "getlist") else data[name]
        if name == "active" and isinstance(value, str):  # a form post
            value = {"true": True, "false": False, "on": True, "": False}.get(value.strip().lower(), value)
        changes[name] = value
    return changes


class EndpointListCreateApi(APIView):
    pagination_class = api_settings.DEFAULT_PAGINATION_CLASS

    @extend_schema(responses=serializers.EndpointSerializer(many=True))
    def get(self, request, project_id: int):
        """The project's webhook endpoints (their secrets are never shown again)."""
        project = project_for(request, project_id, Action.MANAGE)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.endpoint_list(project=project), request, view=self)
        return paginator.get_paginated_response(serializers.EndpointSerializer(page, many=True).data)

    @extend_schema(request=serializers.EndpointWriteSerializer,
                   responses={201: serializers.EndpointWithSecretSerializer})
    def post(self, request, project_id: int):
        """Add an endpoint. The answer holds its signing secret, shown this once."""
        project = project_for(request, project_id, Action.MANAGE)
        changes = _changes(request)
        for name in ("url", "events"):
            if name not in changes:
                raise InvalidInput(f"{name} is required.", field=name)
        endpoint = services.endpoint_create(project=project, created_by=request.user, **changes)
        return Response(serializers.EndpointWithSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED)


class EndpointDetailApi(APIView):
    @extend_schema(responses=serializers.EndpointSerializer)
    def get(self, request, project_id: int, endpoint_id: int):
        project = project_for(request, project_id, Action.MANAGE)
        endpoint = selectors.endpoint_get(project=project, endpoint_id=endpoint_id)
        return Response(serializers.EndpointSerializer(endpoint).data)

    @extend_schema(request=serializers.EndpointUpdateSerializer, responses=serializers.EndpointSerializer)
    def patch(self, request, project_id: int, endpoint_id: int):
        """Change the URL, events, description or active flag; all are checked before any is saved."""
        project = project_for(request, project_id, Action.MANAGE)
        endpoint = selectors.endpoint_get(project=project, endpoint_id=endpoint_id)
        endpoint = services.endpoint_update(endpoint=endpoint, **_changes(request))
        return Response(serializers.EndpointSerializer(endpoint).data)

    @extend_schema(responses={204: None})
    def delete(self, request, project_id: int, endpoint_id: int):
        """Remove the endpoint and its delivery log."""
        project = project_for(request, project_id, Action.MANAGE)
        services.endpoint_delete(endpoint=selectors.endpoint_get(project=project, endpoint_id=endpoint_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class EndpointSecretRotateApi(APIView):
    @extend_schema(request=None, responses=serializers.EndpointWithSecretSerializer)
    def post(self, request, project_id: int, endpoint_id: int):
        """A new signing secret, shown this once; the old one signs beside it for the grace period, then stops."""
        project = project_for(request, project_id, Action.MANAGE)
        endpoint = selectors.endpoint_get(project=project, endpoint_id=endpoint_id)
        endpoint = services.endpoint_secret_rotate(endpoint=endpoint)
        return Response(serializers.EndpointWithSecretSerializer(endpoint).data)


class EndpointSecretGraceEndApi(APIView):
    @extend_schema(request=None, responses={200: serializers.EndpointSerializer, 409: dict})
    def post(self, request, project_id: int, endpoint_id: int):
        """End the rotation's grace now: the previous secret stops signing and is erased (409 if none)."""
        project = project_for(request, project_id, Action.MANAGE)
        endpoint = selectors.endpoint_get(project=project, endpoint_id=endpoint_id)
        endpoint = services.endpoint_secret_grace_end(endpoint=endpoint)
        return Response(serializers.EndpointSerializer(endpoint).data)


class DeliveryListApi(APIView):
    pagination_class = api_settings.DEFAULT_PAGINATION_CLASS

    @extend_schema(
        parameters=[OpenApiParameter("endpoint", int, description="Only this endpoint's deliveries.")],
        responses=serializers.DeliverySerializer(many=True),
    )
    def get(self, request, project_id: int):
        """The delivery log, newest first: status, attempts, the last status code and response time."""
        project = project_for(request, project_id, Action.MANAGE)
        endpoint_id = None
        if request.query_params.get("endpoint") not in (None, ""):
            endpoint_id = as_id(request.query_params["endpoint"])
            if endpoint_id is None:
                raise InvalidInput("endpoint must be an endpoint id.", field="endpoint")
        deliveries = selectors.delivery_list(project=project, endpoint_id=endpoint_id)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(deliveries, request, view=self)
        return paginator.get_paginated_response(serializers.DeliverySerializer(page, many=True).data)


def _detail(delivery) -> dict:
    delivery.attempt_list = list(selectors.attempt_list(delivery=delivery))
    return serializers.DeliveryDetailSerializer(delivery).data


class DeliveryDetailApi(APIView):
    @extend_schema(responses=serializers.DeliveryDetailSerializer)
    def get(self, request, project_id: int, delivery_id: int):
        """One delivery with the payload sent and every attempt (status code, response time, error)."""
        project = project_for(request, project_id, Action.MANAGE)
        return Response(_detail(selectors.delivery_get(project=project, delivery_id=delivery_id)))


class DeliveryRedeliverApi(APIView):
    @extend_schema(request=None, responses={202: serializers.DeliveryDetailSerializer, 409: dict})
    def post(self, request, project_id: int, delivery_id: int):
        """Send a failed delivery again (a new round of attempts); a succeeded one answers 409."""
        project = project_for(request, project_id, Action.MANAGE)
        delivery = services.delivery_redeliver(delivery=selectors.delivery_get(project=project, delivery_id=delivery_id))
        return Response(_detail(delivery), status=status.HTTP_202_ACCEPTED)
