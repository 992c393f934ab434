from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", views.account, name="account"),
    path("account/token/create/", views.token_change, {"action": "create"}, name="account-token-create"),
    path("account/token/rotate/", views.token_change, {"action": "rotate"}, name="account-token-rotate"),
    path("account/token/revoke/", views.token_change, {"action": "revoke"}, name="account-token-revoke"),
    path("account/password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("account/password/reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("account/password/reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("account/password/reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("account/password/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
]
