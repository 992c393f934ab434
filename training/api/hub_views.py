"""A registered model pushed to the Hugging Face Hub: start a push, list the model's pushes."""

from django.http import Http404
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.dataset_views import HubPushSerializer
from annotation.api.parsers import FormBodyParser, JSONBodyParser
from annotation.hub_push import hub_push_payload
from annotation.ids import as_id
from training import model_push, selectors


class ModelPushInputSerializer(serializers.Serializer):
    repo_id = serializers.CharField(help_text="The Hub model repository, owner/name.")
    token = serializers.CharField(help_text="A Hugging Face access token with write access; never stored.")
    private = serializers.BooleanField(required=False, default=True)


def model_for(request, model_id):
    """The model if the user may see it (this project's or global); 404 otherwise."""
    pk = as_id(model_id)
    model = selectors.model_list_for_user(user=request.user).filter(pk=pk).first() if pk is not None else None
    if model is None:
        raise Http404("No such model.")
    return model


@method_decorator(sensitive_post_parameters("token"), name="dispatch")
class ModelHubPushApi(APIView):
    parser_classes = [JSONBodyParser, FormBodyParser]

    @extend_schema(responses=HubPushSerializer(many=True))
    def get(self, request, model_id: int):
        """The model's latest pushes, newest first."""
        model = model_for(request, model_id)
        return Response([hub_push_payload(push) for push in model_push.model_pushes(model=model, limit=50)])

    @extend_schema(request=ModelPushInputSerializer, responses={202: HubPushSerializer})
    def post(self, request, model_id: int):
        """Push the model's directory (with its card as README.md) to the Hub, on a worker; 202 with the push.

        The project's admins and engineers may push its models; superusers, the global ones. The token is
        handed to the worker and never stored.
        """
        model = model_for(request, model_id)
        data = request.data if hasattr(request.data, "get") else {}
        push = model_push.model_push_start(
            model=model, user=request.user, repo_id=data.get("repo_id"), token=data.get("token"),
            private=data.get("private"),
        )
        return Response(hub_push_payload(push), status=status.HTTP_202_ACCEPTED)
