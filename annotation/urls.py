from django.urls import include, path

from . import my_work_views, review_views, views

urlpatterns = [
    path("", views.project_list, name="project-list"),
    path("projects/<id:project_id>/label/<str:kind>/", views.task_label, name="task-label"),
    path("projects/<id:project_id>/my-work/", my_work_views.my_work_page, name="my-work"),
    path("projects/<id:project_id>/review/", review_views.review_next, name="review-next"),
    path("", include("annotation.admin_urls")),
]
