"""The dispatcher console at /console: server-rendered pages (Jinja), htmx for partial updates, Alpine.js for
small local state, Leaflet for the map, every file served from this package.

An edge beside service/api: a dispatcher (or ops, read-only) signs in with a token and gets a session cookie;
every action calls the domain functions the API calls, with the same rules, and shows the domain's refusal."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, Response, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from flask_babel import Babel
from flask_wtf.csrf import CSRFProtect
from itsdangerous import URLSafeTimedSerializer

from service.console import track, views
from service.console.auth import LANG_COOKIE, LANGUAGES
from service.deps import Deps

PREFIX = "/console"
SECRET_NAME = "console-session"
"""Without AIDLINE_SECRET_KEY, the session signing key is generated once and kept in Redis under this name."""
HERE = Path(__file__).parent


def init_app(app: Flask, deps: Deps) -> None:
    """Mount the console on the app: session, CSRF (console only), languages, the CSP, the pages; and the
    requester's tracking page at /t/{code} (service.console.track), which shares its languages and look."""
    settings = deps.settings
    if settings.secret_key and not app.secret_key:
        app.secret_key = settings.secret_key
    app.config.update(
        SESSION_COOKIE_NAME="aidline_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PATH=PREFIX,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        WTF_CSRF_CHECK_DEFAULT=False,  # the JSON API uses bearer tokens: only the console's forms are checked
        WTF_CSRF_TIME_LIMIT=None,  # valid as long as the session: a console stays open through a long night
        WTF_CSRF_SSL_STRICT=True,
        BABEL_DEFAULT_LOCALE="en",
        BABEL_TRANSLATION_DIRECTORIES=str(HERE / "translations"),
    )
    app.session_interface = ConsoleSessions(lambda: deps.store.tokens.secret(SECRET_NAME))
    CSRFProtect(app)
    Babel(app, locale_selector=select_locale)
    app.register_blueprint(views.blp, url_prefix=PREFIX)
    app.register_blueprint(track.blp)

    tiles = settings.map_tiles_url
    policy = content_security_policy(tiles)

    @app.after_request
    def console_headers(response: Response) -> Response:
        if request.path == PREFIX or request.path.startswith(PREFIX + "/"):
            response.headers["Content-Security-Policy"] = policy
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Referrer-Policy"] = "same-origin"
            response.headers["X-Frame-Options"] = "DENY"
            if not request.path.startswith(PREFIX + "/static/"):
                response.headers["Cache-Control"] = "no-store"
        return response


def select_locale() -> str:
    """The language chosen on the console (a cookie), else the browser's, else English."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or "en"


def tiles_origin(url: str) -> str | None:
    """The origin of an XYZ tile URL template ('https://{s}.tile.example.org/{z}/{x}/{y}.png')."""
    if not url:
        return None
    parts = urlsplit(url.replace("{s}", "*"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(tiles_url: str) -> str:
    """Everything from this origin; no inline script, no eval; images also from the tile server, if one."""
    images = "'self' data:"
    origin = tiles_origin(tiles_url)
    if origin:
        images += f" {origin}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src {images}; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    )


class ConsoleSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the Secure flag whenever the request came over HTTPS (as ProxyFix
    reports it behind AIDLINE_PROXY_HOPS proxies), and, without AIDLINE_SECRET_KEY, the signing key fetched from
    Redis on first use (the same for every process; the app starts while Redis is still coming up)."""

    def __init__(self, secret: Callable[[], str]) -> None:
        self.secret = secret

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or (has_request_context() and request.is_secure)

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            if not (has_request_context() and request.path.startswith(PREFIX)):
                return None  # no session outside the console: the API and /healthz never wait for the key
            app.secret_key = self.secret()
        return super().get_signing_serializer(app)
