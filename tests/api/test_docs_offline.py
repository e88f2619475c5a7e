"""`/docs` and `/redoc` load everything they reference from the app itself: no external host
in the pages, and every script, style sheet, icon and the schema they name answers here."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from api.docs_pages import STATIC_DIR
from tests.api.conftest import Api


class References(HTMLParser):
    """The `src`, `href` and `spec-url` attributes of a page, and the `url:` of Swagger's setup."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs
                      if name in ("src", "href", "spec-url") and value]

    def handle_data(self, data: str) -> None:
        self.urls += re.findall(r"\burl: '([^']+)'", data)


def references(html: str) -> list[str]:
    parser = References()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize(("page", "expected"), [
    ("/docs", {"/static/swagger-ui/swagger-ui-bundle.js", "/static/swagger-ui/swagger-ui.css",
               "/static/swagger-ui/favicon-32x32.png", "/openapi.json"}),
    ("/redoc", {"/static/redoc/redoc.standalone.js", "/static/swagger-ui/favicon-32x32.png",
                "/openapi.json"}),
])
async def test_a_docs_page_loads_only_what_the_app_serves(
    api: Api, page: str, expected: set[str],
) -> None:
    response = await api.http.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert not re.findall(r"(?:https?:)?//[\w.-]+", html), "an external host in the page"
    urls = references(html)
    assert set(urls) == expected

    for url in urls:
        asset = await api.http.get(url)
        assert asset.status_code == 200, url
        if url.startswith("/static/"):
            on_disk = (STATIC_DIR / url.removeprefix("/static/")).read_bytes()
            assert asset.content == on_disk, url
    kinds = {url.rsplit(".", 1)[-1]: (await api.http.get(url)).headers["content-type"]
             for url in urls}
    assert kinds["json"].startswith("application/json")
    assert kinds["js"].split(";")[0] in ("text/javascript", "application/javascript")
    assert kinds["png"] == "image/png"


async def test_what_the_pages_load_is_the_real_thing(api: Api) -> None:
    swagger = await api.http.get("/static/swagger-ui/swagger-ui-bundle.js")
    assert b"SwaggerUIBundle" in swagger.content
    redoc = await api.http.get("/static/redoc/redoc.standalone.js")
    assert b"spec-url" in redoc.content  # the attribute the /redoc page hands it
    # its side menu's logo came from Redocly's CDN: the bundle names ours instead
    assert b"cdn.redoc.ly" not in redoc.content
    assert (await api.http.get("/static/redoc/logo-mini.svg")).status_code == 200
    schema = (await api.http.get("/openapi.json")).json()
    assert schema["info"]["title"] == "fleetpipe"
    assert (await api.http.get("/static/swagger-ui/nothing.js")).status_code == 404
