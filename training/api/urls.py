"""Training API routes; included by config/api_router.py."""

urlpatterns: list = []
