"""The project's webhook pages; included by config/urls.py."""

from django.urls import path

from . import views

urlpatterns = [
    path("projects/<id:project_id>/webhooks/", views.webhook_list, name="project-webhooks"),
    path("projects/<id:project_id>/webhooks/<id:endpoint_id>/", views.webhook_detail, name="project-webhook"),
    path("projects/<id:project_id>/webhooks/<id:endpoint_id>/rotate/", views.webhook_rotate,
         name="project-webhook-rotate"),
    path("projects/<id:project_id>/webhooks/<id:endpoint_id>/end-grace/", views.webhook_end_grace,
         name="project-webhook-end-grace"),
    path("projects/<id:project_id>/webhooks/<id:endpoint_id>/delete/", views.webhook_delete,
         name="project-webhook-delete"),
    path("projects/<id:project_id>/webhook-deliveries/<id:delivery_id>/redeliver/", views.webhook_redeliver,
         name="project-webhook-redeliver"),
]
