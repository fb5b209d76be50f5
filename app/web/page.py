"""The teacher page: plain HTML + one vanilla JS file, served at / and /app, no build step, no CDN.

It calls the public JSON API from the same origin with the bearer token kept in sessionStorage.
"""
from __future__ import annotations

from flask import Blueprint, Flask, Response, make_response, render_template

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static",
               static_url_path="/app/static")

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


@bp.get("/")
@bp.get("/app")
@bp.get("/app/")
def index():
    resp = with_security_headers(make_response(render_template("teacher.html")), CSP)
    resp.headers["Cache-Control"] = "no-cache"
    return resp


def with_security_headers(resp: Response, csp: str) -> Response:
    """The headers of every page this app serves (the teacher page, /api/docs): its CSP, no sniffing, no referrer."""
    resp.headers["Content-Security-Policy"] = csp
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
