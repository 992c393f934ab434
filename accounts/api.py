"""POST /api/auth/token/: a username and password for the API token, under the login lockout."""

from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors, services
from .lockout import lockout_get

User = get_user_model()


class LoginLockedOut(APIException):
    """429 with Retry-After (DRF's exception handler sends `wait` as that header)."""

    status_code = 429
    default_code = "locked_out"

    def __init__(self, *, detail: str, wait: int):
        super().__init__(detail=detail)
        self.wait = wait


class TokenRequestSerializer(AuthTokenSerializer):
    # As long as a username can be: a longer one names no account, and the lockout's record of
    # failed attempts (255 characters) could not store it.
    username = serializers.CharField(
        label="Username", write_only=True, max_length=User._meta.get_field(User.USERNAME_FIELD).max_length
    )

    def validate(self, attrs):
        try:
            return super().validate(attrs)
        except serializers.ValidationError:
            lockout = lockout_get(request=self.context["request"], username=attrs.get("username"))
            if lockout is None:
                raise
            raise LoginLockedOut(detail=lockout.message, wait=lockout.seconds) from None


class TokenCreateApi(APIView):
    """Exchange a username and password for the API token (a new one if the old one expired).

    The endpoint authenticates by password only: an Authorization header, even an expired token,
    is ignored, so a client whose token expired can always come here for a new one.
    """

    authentication_classes = ()
    permission_classes = ()
    throttle_classes = ()

    @extend_schema(
        request=TokenRequestSerializer,
        responses={
            200: inline_serializer(
                "TokenIssued",
                {"token": serializers.CharField(), "expires_at": serializers.DateTimeField(allow_null=True)},
            ),
            400: OpenApiResponse(description="Wrong username or password."),
            429: OpenApiResponse(description="Too many failed logins; Retry-After and the detail say when to retry."),
        },
    )
    def post(self, request):
        data = TokenRequestSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        user = data.validated_data["user"]
        services.login_failures_reset(username=user.get_username())
        token = services.token_issue(user=user)
        return Response({"token": token.key, "expires_at": selectors.token_expires_at(created=token.created)})
