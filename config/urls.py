from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config import converters  # noqa: F401  registers <id:...> before the includes below use it



class FaviconRedirect(RedirectView):
    """/favicon.ico, which browsers ask for on pages that name no icon (the admin's, Swagger's): the SVG icon.

    The target is resolved per request: in production it is the hashed name from collectstatic's manifest.
    """

    permanent = True

    def get_redirect_url(self, *args, **kwargs) -> str:
        return static("favicon.svg")


urlpatterns = [
    path("favicon.ico", FaviconRedirect.as_view()),
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
