from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config import converters  # noqa: F401  registers <id:...> before the includes below use it

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("accounts.urls")),
    path("api/", include("config.api_router")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's init script from this URL (?script=), not inline: see the CSP.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="api/swagger_ui.html"),
         name="api-docs"),
    path("", include("annotation.urls")),
    path("", include("webhooks.urls")),
    path("training/", include("training.urls")),
    path("training/", include("loop.urls")),
]
