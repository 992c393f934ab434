"""The loop's pages, included at /training/ by config/urls.py beside training's own."""

from django.urls import path

from . import views

urlpatterns = [
    path("generation/", views.generation_list, name="training-generation-list"),
    path("generation/new/", views.generation_new, name="training-generation-new"),
    path("generation/<id:job_id>/", views.generation_detail, name="training-generation-detail"),
    path("evaluations/", views.evaluation_list, name="training-evaluation-list"),
    path("evaluations/new/", views.evaluation_new, name="training-evaluation-new"),
    path("evaluations/<id:evaluation_id>/", views.evaluation_detail, name="training-evaluation-detail"),
    path("projects/<id:project_id>/leaderboard/", views.leaderboard, name="training-leaderboard"),
]
