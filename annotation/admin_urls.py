"""Routes of the project admin pages (dashboard, import, settings)."""

from django.urls import path

urlpatterns: list = []
