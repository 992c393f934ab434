"""Account pages: log in, the profile with the API token, password change and reset.

The password pages are Django's own views with our templates; a password set through any of them
replaces the API token (receivers.rotate_token_on_password_change).
"""

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.messages.views import SuccessMessageMixin
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_POST

from . import selectors, services
from .forms import LoginForm


class LoginView(auth_views.LoginView):
    """A locked-out attempt answers 429 with Retry-After; the form says when to retry."""

    form_class = LoginForm
    template_name = "registration/login.html"

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.lockout is not None:
            response.status_code = 429
            response["Retry-After"] = str(form.lockout.seconds)
        return response


class PasswordChangeView(SuccessMessageMixin, auth_views.PasswordChangeView):
    success_url = reverse_lazy("account")
    success_message = "Your password was changed. If you had an API token, it was replaced by a new one."


@login_required
def account(request):
    return render(request, "accounts/account.html", {
        "token": selectors.token_get(user=request.user),
        "memberships": selectors.membership_list_for_user(user=request.user),
    })


_TOKEN_ACTIONS = {
    "create": (services.token_issue, "Your API token is ready."),
    "rotate": (services.token_rotate, "Your API token was replaced. The old key no longer works."),
    "revoke": (services.token_revoke, "Your API token was revoked. It no longer works."),
}


@login_required
@require_POST
def token_change(request, action: str):
    service, message = _TOKEN_ACTIONS[action]
    service(user=request.user)
    messages.success(request, message)
    return redirect("account")
