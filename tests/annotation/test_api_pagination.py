"""?limit= and ?offset= on every paginated list: clamped to what the database and a response can hold."""

import pytest

from annotation.api import pagination
from annotation.models import Membership
from tests.factories import ProjectFactory, member
from training.models import ModelVersion

pytestmark = pytest.mark.django_db

LISTS = ["/api/models/", "/api/training-runs/", "/api/generation-jobs/", "/api/evaluations/"]
HUGE = [2**63, 10**30, "9" * 5000]


@pytest.fixture
def api(client_for):
    project = ProjectFactory()
    for i in range(5):
        ModelVersion.objects.create(name=f"m{i}", kind="base", path=f"models/m{i}", project=project)
    return client_for(member(project, role=Membership.Role.ADMIN))


@pytest.mark.parametrize("url", LISTS)
@pytest.mark.parametrize("huge", HUGE, ids=["2**63", "10**30", "5000 digits"])
def test_a_huge_limit_or_offset_is_a_200(api, url, huge):
    by_limit = api.get(f"{url}?limit={huge}")
    assert by_limit.status_code == 200, by_limit.content
    by_offset = api.get(f"{url}?offset={huge}&limit=10")
    assert by_offset.status_code == 200, by_offset.content
    assert by_offset.json()["results"] == []


def test_the_limit_is_clamped_and_the_next_link_says_so(api, monkeypatch):
    monkeypatch.setattr(pagination.ClampedLimitOffsetPagination, "max_limit", 2)
    page = api.get(f"/api/models/?limit={10**30}").json()
    assert page["count"] == 5
    assert [m["name"] for m in page["results"]] == ["m4", "m3"]
    assert "limit=2" in page["next"] and "offset=2" in page["next"]


def test_the_default_page_and_max_limit(api):
    page = api.get("/api/models/?limit=1000000").json()
    assert page["count"] == 5 and len(page["results"]) == 5
    assert pagination.ClampedLimitOffsetPagination().max_limit == pagination.MAX_LIMIT == 1000
    after_the_end = api.get(f"/api/models/?offset={2**63}").json()
    assert after_the_end["results"] == [] and after_the_end["next"] is None
