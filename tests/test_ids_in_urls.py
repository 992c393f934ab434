"""Ids past the database's integer range find nothing (404) on every route, never a 500.

The routes are read from the URL resolver, so a route added later is covered without editing
this file; a route that takes an id through `<int:...>` instead of `<id:...>` fails here.
"""

import re
from types import SimpleNamespace

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.converters import IntConverter

from annotation.models import Membership
from config.converters import IdConverter
from tests.factories import ProjectFactory, member

pytestmark = pytest.mark.django_db

HUGE_IDS = [2**63, 10**30]
_PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")


def _routes(patterns=None, prefix="", converters=None):
    """(route text such as "api/projects/<id:project_id>/", {param: converter}) for every URL pattern."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        found = {**(converters or {}), **getattr(pattern.pattern, "converters", {})}
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            if route.startswith(("^admin", "admin/")):
                continue  # Django's own admin: object ids are <path:...>, parsed by the admin itself
            yield from _routes(pattern.url_patterns, route, found)
        elif isinstance(pattern, URLPattern):
            yield route, found


def _id_params(converters: dict) -> list[str]:
    return [name for name, converter in converters.items() if isinstance(converter, IdConverter)]


ROUTES = dict(_routes())
ID_ROUTES = sorted(route for route, converters in ROUTES.items() if _id_params(converters))


def _fill(route: str, values: dict) -> str:
    return "/" + _PARAM.sub(lambda m: str(values[m.group("name")]), route)


def test_the_resolver_lists_the_id_routes_and_none_uses_int():
    routes = ID_ROUTES
    assert "api/projects/<id:project_id>/" in routes
    assert "training/runs/<id:run_id>/" in routes
    assert "projects/<id:project_id>/settings/members/<id:user_id>/role/" in routes
    assert len(routes) >= 25
    with_int = [route for route, converters in ROUTES.items() if any(isinstance(c, IntConverter) for c in converters.values())]
    assert with_int == [], "use <id:...> for ids: " + ", ".join(with_int)


@pytest.fixture
def admin_clients(client, client_for):
    """An admin of a project, signed in for the pages and holding a token for the API."""
    project = ProjectFactory()
    admin = member(project, role=Membership.Role.ADMIN)
    client.force_login(admin)
    return SimpleNamespace(project=project, admin=admin, pages=client, api=client_for(admin))


def _client_for(clients, url: str):
    return clients.api if url.lstrip("/").startswith("api/") else clients.pages


@pytest.mark.parametrize("route", ID_ROUTES)
def test_an_id_past_bigint_is_404_on_every_route(admin_clients, route):
    client = _client_for(admin_clients, route)
    params = [m.group("name") for m in _PARAM.finditer(route)]
    valid = {"project_id": admin_clients.project.pk, "user_id": admin_clients.admin.pk, "kind": "demonstration"}
    for name in _id_params(ROUTES[route]):
        for huge in HUGE_IDS:
            url = _fill(route, {**{p: valid.get(p, 1) for p in params}, name: huge})
            for method in ("get", "post"):
                response = getattr(client, method)(url)
                assert response.status_code == 404, (method, url, response.status_code)


@pytest.mark.parametrize("route", sorted(route for route, converters in ROUTES.items() if not _id_params(converters)))
def test_ids_past_bigint_in_query_parameters_are_never_a_500(admin_clients, route):
    """?project= (and the other id parameters pages prefill from) on every route that takes no id in its path."""
    client = _client_for(admin_clients, route)
    params = {m.group("name"): "sft" for m in _PARAM.finditer(route)}
    for huge in HUGE_IDS:
        query = f"?project={huge}&model={huge}&base_model={huge}&limit={huge}&offset={huge}"
        response = client.get(_fill(route, params) + query)
        assert response.status_code < 500, (route, huge, response.status_code)


@pytest.mark.parametrize(
    "url", ["/api/generation-jobs/?project={}", "/training/runs/?project={}"]
)
def test_list_filters_by_a_huge_project_id_answer_200(admin_clients, url):
    client = _client_for(admin_clients, url)
    for huge in HUGE_IDS:
        assert client.get(url.format(huge)).status_code == 200


@pytest.mark.parametrize("url", ["/training/runs/new/?project={}", "/training/generation/new/?project={}"])
def test_a_form_prefilled_with_a_huge_project_id_is_404(admin_clients, url):
    for huge in HUGE_IDS:
        assert admin_clients.pages.get(url.format(huge)).status_code == 404
