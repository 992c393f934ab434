"""The API's remembered content negotiation answers as DRF's own would, repeat after repeat."""

import pytest

from tests.conftest import api_client_for
from tests.factories import ProjectFactory, member

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("accept, content_type, code", [
    (None, "application/json", 200),
    ("application/json", "application/json", 200),
    ("text/html", "text/html; charset=utf-8", 200),
    ("application/xml", "application/json", 406),
])
def test_each_accept_header_gets_the_same_answer_every_time(accept, content_type, code):
    project = ProjectFactory()
    client = api_client_for(member(project))
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    for _ in range(3):  # the first answer is computed, the next ones remembered
        response = client.get(f"/api/projects/{project.pk}/", **headers)
        assert response.status_code == code
        assert response["Content-Type"] == content_type
    if code == 200 and content_type == "application/json":
        assert response.json()["id"] == project.pk
