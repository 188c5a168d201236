"""`/docs` and `/redoc` work inside an intranet (issue 16, item 5): every script, style, icon
and font they load is served by the app itself (the package's copy of Swagger UI and ReDoc,
from `fastapi-offline`), none from a CDN."""

from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest


class _Assets(HTMLParser):
    """The URLs a page makes the browser load: scripts, styles, icons, images."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_every_asset_of_the_docs_pages_is_local_and_served(
    client: httpx.AsyncClient, page: str
) -> None:
    response = await client.get(page)
    assert response.status_code == 200, response.text
    assets = _Assets()
    assets.feed(response.text)

    assert any(url.endswith(".js") for url in assets.urls), assets.urls
    for url in assets.urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page} loads {url} from elsewhere"
        served = await client.get(url)
        assert served.status_code == 200, url
        assert served.content, url
    assert "cdn." not in response.text and "fonts.googleapis" not in response.text
    assert (await client.get("/openapi.json")).status_code == 200
