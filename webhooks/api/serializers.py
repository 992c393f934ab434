"""The webhooks API's shapes. They document the bodies; the services check each value and name the field."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from webhooks import selectors
from webhooks.models import EventType, WebhookDelivery


class EndpointWriteSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="An http(s) URL; loopback and internal addresses are refused.")
    events = serializers.ListField(child=serializers.ChoiceField(choices=EventType.choices), min_length=1)
    description = serializers.CharField(required=False, allow_blank=True, max_length=500)
    active = serializers.BooleanField(required=False, default=True)


class EndpointUpdateSerializer(EndpointWriteSerializer):
    url = serializers.URLField(required=False)
    events = serializers.ListField(child=serializers.ChoiceField(choices=EventType.choices), required=False)
    active = serializers.BooleanField(required=False)


class EndpointSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.IntegerField(source="project_id")
    url = serializers.CharField()
    description = serializers.CharField()
    active = serializers.BooleanField()
    events = serializers.ListField(child=serializers.CharField())
    previous_secret_valid_until = serializers.SerializerMethodField(
        help_text="After a rotation: until when the previous secret still signs beside the new one; null when "
                  "only the current secret signs.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_previous_secret_valid_until(self, endpoint):
        until = selectors.previous_secret_valid_until(endpoint=endpoint)
        return serializers.DateTimeField().to_representation(until) if until else None


class EndpointWithSecretSerializer(EndpointSerializer):
    secret = serializers.CharField(help_text="The signing secret (whsec_...): shown only now; store it.")


class AttemptSerializer(serializers.Serializer):
    attempt = serializers.IntegerField()
    status_code = serializers.IntegerField(allow_null=True)
    response_ms = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()


class DeliverySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    endpoint = serializers.IntegerField(source="endpoint_id")
    event_id = serializers.CharField()
    event_type = serializers.CharField()
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.choices)
    attempts = serializers.IntegerField()
    last_status_code = serializers.IntegerField(allow_null=True)
    last_response_ms = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class DeliveryDetailSerializer(DeliverySerializer):
    payload = serializers.JSONField()
    attempt_log = AttemptSerializer(many=True, source="attempt_list")
