"""Whether a login is locked out, until when, and the answers that say so.

django-axes records failed logins and refuses authenticate() while an account or an address is
over AXES_FAILURE_LIMIT within the cool-off (see docs/accounts.md). It does not say when the
refusal ends, which is what a person or a script needs to know, so lockout_get works it out from
the same records with the same rules as axes: failures are kept per (username, address, user agent)
row, each row counts in full until its latest failure is older than the cool-off, and a lock holds
while the newest rows of the account, or of the address, add up to the limit. The lock ends when
the row whose failures brought the sum to the limit ages out. Attempts made while locked out are
not recorded (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False), so the time we announce
stays true however often someone retries.
"""

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from axes.conf import settings
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username, get_cool_off, get_credentials, get_failure_limit
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone


@dataclass(frozen=True)
class Lockout:
    retry_at: datetime

    @property
    def seconds(self) -> int:
        return max(1, math.ceil((self.retry_at - timezone.now()).total_seconds()))

    @property
    def message(self) -> str:
        minutes = math.ceil(self.seconds / 60)
        when = self.retry_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return (
            f"Too many failed login attempts. Try again in {minutes} minute{'s' if minutes != 1 else ''} "
            f"(after {when})."
        )


def lockout_get(*, request: HttpRequest, username: str | None) -> Lockout | None:
    """The lockout that applies to this request and username now, or None."""
    credentials = get_credentials(username)
    AxesProxyHandler.update_request(request)
    handler = AxesProxyHandler.get_implementation()  # the database handler (AXES_HANDLER)
    limit = get_failure_limit(request, credentials)
    cool_off = get_cool_off(request)
    retry_at = None
    for attempts in handler.get_user_attempts(request, credentials):
        total = 0
        for attempt_time, failures in attempts.order_by("-attempt_time").values_list("attempt_time", "failures_since_start"):
            total += failures
            if total >= limit:
                ends = attempt_time + cool_off
                retry_at = ends if retry_at is None else max(retry_at, ends)
                break
    if retry_at is None or retry_at <= timezone.now():
        return None
    return Lockout(retry_at=retry_at)


def attempt_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """AXES_USERNAME_CALLABLE: the username a failed login is recorded and counted under.

    Axes' own lookup (the credentials, else the posted form), cut to the 255 characters its
    records hold. Usernames are at most 150 characters, so a longer one names no account; uncut,
    recording it fails with a database error, a 500 from any login form that lets it through
    (Django's AuthenticationForm announces its max_length but does not enforce it).
    """
    if credentials:
        username = credentials.get(settings.AXES_USERNAME_FORM_FIELD)
    else:
        username = getattr(request, "data", request.POST).get(settings.AXES_USERNAME_FORM_FIELD)
    return username[:255] if isinstance(username, str) else username


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the answer to a login attempt that axes locked out.

    The login page and POST /api/auth/token/ answer a lockout themselves (in the form, and as JSON),
    with status 429; their answer is kept. Any other login that goes through authenticate()
    (Django admin's) gets the same message here: JSON for API clients, a page for browsers.
    """
    if isinstance(original_response, HttpResponseBase) and original_response.status_code == 429:
        return original_response
    if not isinstance(credentials, dict):
        credentials = None
    lockout = lockout_get(request=request, username=get_client_username(request, credentials))
    if lockout is None:  # the lock ended between the attempt and now
        lockout = Lockout(retry_at=timezone.now())
    if request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", ""):
        response = JsonResponse({"detail": lockout.message}, status=429)
    else:
        response = render(request, "accounts/locked_out.html", {"lockout": lockout}, status=429)
    response["Retry-After"] = str(lockout.seconds)
    return response
