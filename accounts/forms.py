"""The login form: Django's, with the lockout message in the form instead of a bare error page."""

from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from .lockout import Lockout, lockout_get


class LoginForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Your username and password didn't match. Please try again.",
    }
    lockout: Lockout | None = None

    def clean(self):
        try:
            return super().clean()
        except ValidationError:
            self.lockout = lockout_get(request=self.request, username=self.cleaned_data.get("username"))
            if self.lockout is None:
                raise
            raise ValidationError(self.lockout.message, code="locked_out") from None
