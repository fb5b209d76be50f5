"""/api/docs: Swagger UI over /api/v1/openapi.json, with every file served from this origin.

Swagger UI's files come from the swagger-ui-bundle package (pinned in constraints.txt), so the page
works offline and loads nothing from a CDN. The page has no inline script (its start-up code is
/api/docs/static/eduq-docs.js), so its Content-Security-Policy allows scripts from this origin only.
"""
from __future__ import annotations

from flask import Blueprint, Flask, Response, abort, make_response, render_template_string, send_from_directory, url_for
from swagger_ui_bundle import swagger_ui_path

from app.web.page import with_security_headers

bp = Blueprint("swagger_ui", __name__)

# the files of the bundle the page uses; nothing else of the package's folder is served
ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png")
STARTUP = "eduq-docs.js"

# Swagger UI sets styles through the DOM (allowed) and draws its icons from data: URLs in its CSS;
# "Try it out" calls the API on this origin.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{{ title }}</title>
  <link rel="stylesheet" href="{{ url_for('swagger_ui.asset', filename='swagger-ui.css') }}">
  <link rel="icon" type="image/png" sizes="32x32" href="{{ url_for('swagger_ui.asset', filename='favicon-32x32.png') }}">
  <link rel="icon" type="image/png" sizes="16x16" href="{{ url_for('swagger_ui.asset', filename='favicon-16x16.png') }}">
</head>
<body>
  <div id="swagger-ui" data-spec-url="{{ spec_url }}"></div>
  <script src="{{ url_for('swagger_ui.asset', filename='swagger-ui-bundle.js') }}"></script>
  <script src="{{ url_for('swagger_ui.asset', filename='eduq-docs.js') }}"></script>
</body>
</html>
"""

# validatorUrl null: no badge fetched from validator.swagger.io
STARTUP_JS = """window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
"""


def _secure(resp: Response) -> Response:
    return with_security_headers(resp, CSP)


@bp.get("/api/docs")
@bp.get("/api/docs/")
def page():
    html = render_template_string(PAGE, title="EduQueue API", spec_url=url_for("api-docs.openapi_json"))
    resp = make_response(html)
    resp.headers["Cache-Control"] = "no-cache"
    return _secure(resp)


@bp.get("/api/docs/static/<path:filename>")
def asset(filename: str):
    if filename == STARTUP:
        resp = Response(STARTUP_JS, mimetype="text/javascript")
    elif filename in ASSETS:
        resp = send_from_directory(swagger_ui_path, filename, max_age=3600)
    else:
        abort(404)
    return _secure(resp)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
