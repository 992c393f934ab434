"""/favicon.ico: pages without their own icon link (the admin's, Swagger's) make browsers ask for it."""

from django.contrib.staticfiles import finders
from django.templatetags.static import static


def test_favicon_ico_redirects_to_the_svg_icon_for_anyone(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == static("favicon.svg")
    assert finders.find("favicon.svg")  # the target exists among the static files
