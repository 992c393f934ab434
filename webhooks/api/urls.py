"""The webhooks' API routes; included by config/api_router.py."""

from django.urls import path

from . import views

urlpatterns = [
    path("projects/<id:project_id>/webhooks/", views.EndpointListCreateApi.as_view(), name="api-webhook-list"),
    path(
        "projects/<id:project_id>/webhooks/<id:endpoint_id>/", views.EndpointDetailApi.as_view(),
        name="api-webhook-detail",
    ),
    path(
        "projects/<id:project_id>/webhooks/<id:endpoint_id>/rotate-secret/", views.EndpointSecretRotateApi.as_view(),
        name="api-webhook-rotate-secret",
    ),
    path(
        "projects/<id:project_id>/webhooks/<id:endpoint_id>/end-secret-grace/",
        views.EndpointSecretGraceEndApi.as_view(), name="api-webhook-end-secret-grace",
    ),
    path(
        "projects/<id:project_id>/webhook-deliveries/", views.DeliveryListApi.as_view(),
        name="api-webhook-delivery-list",
    ),
    path(
        "projects/<id:project_id>/webhook-deliveries/<id:delivery_id>/", views.DeliveryDetailApi.as_view(),
        name="api-webhook-delivery-detail",
    ),
    path(
        "projects/<id:project_id>/webhook-deliveries/<id:delivery_id>/redeliver/",
        views.DeliveryRedeliverApi.as_view(), name="api-webhook-redeliver",
    ),
]
