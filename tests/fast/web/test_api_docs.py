"""/api/docs works offline: the page loads Swagger UI from this origin only (app/web/api_docs.py),
each file it names answers 200 with a body, and its Content-Security-Policy allows them.
Fast: the app is built in process, with no database or broker."""
from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

ORIGIN = "http://localhost"  # the test client's origin


class _Refs(HTMLParser):
    """Every src= and href= of <script>, <link>, <img> and <iframe>, and whether a script is inline."""

    def __init__(self):
        super().__init__()
        self.refs: list[tuple[str, str]] = []
        self.inline_scripts = 0
        self._in_script_without_src = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for name in ("src", "href"):
            if tag in ("script", "link", "img", "iframe") and a.get(name):
                self.refs.append((tag, a[name]))
        self._in_script_without_src = tag == "script" and not a.get("src")

    def handle_data(self, data):
        if self._in_script_without_src and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script_without_src = False


def _page(client):
    r = client.get("/api/docs")
    assert r.status_code == 200 and r.mimetype == "text/html", (r.status_code, r.mimetype)
    refs = _Refs()
    refs.feed(r.get_data(as_text=True))
    return r, refs


def test_every_script_and_link_is_same_origin(web_app):
    _, refs = _page(web_app.test_client())
    assert any(tag == "script" for tag, _ in refs.refs), refs.refs
    assert any(tag == "link" and u.endswith(".css") for tag, u in refs.refs), refs.refs
    foreign = [u for _, u in refs.refs if urlsplit(urljoin(ORIGIN + "/api/docs", u))[:2] != urlsplit(ORIGIN)[:2]]
    assert not foreign, f"/api/docs loads files from another origin: {foreign}"


def test_every_file_the_page_names_answers_with_a_body(web_app):
    client = web_app.test_client()
    _, refs = _page(client)
    for tag, url in refs.refs:
        r = client.get(urlsplit(urljoin(ORIGIN + "/api/docs", url)).path)
        assert r.status_code == 200, f"{tag} {url}: {r.status_code}"
        assert r.data, f"{tag} {url}: an empty body"
        if tag == "script":
            assert "javascript" in r.mimetype, (url, r.mimetype)


def test_the_page_points_at_the_spec_and_the_spec_answers(web_app):
    client = web_app.test_client()
    r, _ = _page(client)
    assert 'data-spec-url="/api/v1/openapi.json"' in r.get_data(as_text=True)
    assert client.get("/api/v1/openapi.json").get_json()["openapi"].startswith("3.")


def test_the_content_security_policy_allows_this_origin_only(web_app):
    r, refs = _page(web_app.test_client())
    csp = {d.split()[0]: d.split()[1:] for d in r.headers["Content-Security-Policy"].split(";") if d.strip()}
    assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"], csp
    assert csp["connect-src"] == ["'self'"] and csp["default-src"] == ["'self'"], csp
    assert refs.inline_scripts == 0, "an inline script would be blocked by script-src 'self'"


def test_nothing_else_of_the_bundle_folder_is_served(web_app):
    client = web_app.test_client()
    for path in ("/api/docs/static/index.html", "/api/docs/static/../../settings.py", "/api/docs/static/nope.js"):
        assert client.get(path).status_code == 404, path
