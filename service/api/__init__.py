"""The HTTP edge: the Flask application factory."""

from __future__ import annotations

import json
import logging
import os
from functools import cached_property
from io import BytesIO
from pathlib import Path
from typing import IO, Any

import flask
import marshmallow as ma
from flask import Flask, request, send_from_directory
from flask_smorest import Api
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from service.api import (
    catalog,
    drills,
    errors,
    grids,
    health,
    households,
    inbound,
    incidents,
    needs,
    offers,
    ops,
    reports,
    track,
    visits,
    volunteers,
)
from service.api.blueprint import bulk_items
from service.api.errors import error_response
from service.api.schemas import ErrorSchema
from service.bootstrap import bootstrap
from service.config import Settings
from service.logs import setup_logging

log = logging.getLogger("aidline.api")

BODY_METHODS = ("POST", "PUT", "PATCH")
FORM_PATHS = ("/api/v1/inbound/", "/ops/", "/console/", "/t/")
"""Paths that take form posts (SMS gateways, the dashboard, the console, the tracking page's feedback form)."""


class AidlineApi(Api):
    """Documents Aidline's error schema as the default error answer."""

    ERROR_SCHEMA = ErrorSchema

    def _init_spec(self, **options: Any) -> None:
        super()._init_spec(**options)
        self.ma_plugin.converter.add_attribute_function(body_rules2properties)


def body_rules2properties(converter: Any, field: ma.fields.Field[Any], ret: dict[str, Any], **_: Any) -> dict[str, Any]:
    """A schema's BODY_RULES (such as location or address) stated also where it is nested, e.g. as the items of
    a batch, not only where it is a whole request body (Blueprint states those)."""
    rules = getattr(field.schema, "BODY_RULES", None) if isinstance(field, ma.fields.Nested) else None
    if not rules:
        return {}
    if "$ref" in ret:  # OpenAPI 3.0 ignores keywords beside a $ref
        ret["allOf"] = [{"$ref": ret.pop("$ref")}]
    return dict(rules)


def swagger_assets() -> Path:
    import swagger_ui_bundle

    return Path(swagger_ui_bundle.swagger_ui_path)


READ_SIZE = 64 * 1024


class BoundedRequest(flask.Request):
    """A chunked body (no Content-Length) is held to max_content_length like any other: 413 beyond, never cut short.

    Werkzeug stops reading such a body at the limit and hands on what it read, so a body over the limit would
    reach the parser cut off (a 400 "Invalid JSON body."); here it is read to its end or to one byte over the
    limit, and a body over it is refused on every read, as one with a Content-Length over it is."""

    _body_too_large = False

    @cached_property
    def stream(self) -> IO[bytes]:
        limit = self.max_content_length
        if self.content_length is not None or limit is None or not self.environ.get("wsgi.input_terminated"):
            return super().stream
        if self._body_too_large:
            raise RequestEntityTooLarge()
        source, body = self.environ["wsgi.input"], bytearray()
        while piece := source.read(min(READ_SIZE, limit + 1 - len(body))):
            body += piece
            if len(body) > limit:
                self._body_too_large = True
                raise RequestEntityTooLarge()
        return BytesIO(bytes(body))


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Create and configure the Aidline API; tests pass SETTINGS and, optionally, DEPS."""
    app = Flask("service")
    app.request_class = BoundedRequest
    app.config.from_mapping(
        API_TITLE="Aidline",
        API_VERSION="1.0.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="v1/openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="/api/docs/assets/",
        API_SPEC_OPTIONS={
            "info": {
                "description": "Volunteer dispatch: needs in, nearest capable volunteer out, tracked to the end.",
            },
            "components": {
                "securitySchemes": {
                    "bearerAuth": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "Token from `aidline token create`",
                    }
                }
            },
        },
        JSON_SORT_KEYS=False,
    )
    if config:
        app.config.update(config)
    settings: Settings = app.config.get("SETTINGS") or Settings.from_env()
    app.config["MAX_CONTENT_LENGTH"] = settings.max_content_length
    app.config["MAX_BULK_CONTENT_LENGTH"] = settings.max_bulk_content_length
    deps = app.config.get("DEPS") or bootstrap(settings)
    app.extensions["aidline"] = deps

    setup_logging(os.environ.get("AIDLINE_LOG_LEVEL", "INFO"))
    ops.init_request_ids(app)
    init_body_limits(app)
    ops.init_rate_limits(app, deps)
    api = AidlineApi(app)
    errors.init_app(app)
    ops.init_dashboard(app, deps)
    ops.init_metrics(app, deps)
    app.url_map.converters["need"] = needs.NeedIdConverter
    api.register_converter(needs.NeedIdConverter, lambda _: {"type": "string"})
    for module in (
        health,
        catalog,
        volunteers,
        needs,
        incidents,
        offers,
        track,
        inbound,
        drills,
        grids,
        households,
        visits,
        reports,
    ):
        api.register_blueprint(module.blp)

    assets = swagger_assets()

    @app.get("/api/docs/assets/<path:filename>")
    def swagger_asset(filename: str) -> Any:
        """Swagger UI's own files, served locally."""
        return send_from_directory(assets, filename)

    @app.before_request
    def json_only() -> Any:
        """Bodies must be JSON (415 otherwise); empty bodies are left to the schemas."""
        if request.method not in BODY_METHODS or request.path.startswith(FORM_PATHS):
            return None
        has_body = bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "")
        if has_body and not request.is_json:
            return error_response(415, "send the body as JSON with 'Content-Type: application/json'")
        return None

    ops.init_idempotency(app, deps)
    if settings.proxy_hops:  # the client's address and scheme as the proxies in front report them (rate limits,
        # the console's Secure cookie)
        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    app.wsgi_app = LimitRequestLine(app.wsgi_app)  # type: ignore[method-assign]
    return app


def init_body_limits(app: Flask) -> None:
    """Operations marked `Blueprint.bulk` take bodies up to MAX_BULK_CONTENT_LENGTH; every other one up to
    MAX_CONTENT_LENGTH (413 beyond). Registered before anything reads the body (rate limits, idempotency)."""

    @app.before_request
    def bulk_body_limit() -> None:
        if bulk_items(app) is not None:
            request.max_content_length = app.config["MAX_BULK_CONTENT_LENGTH"]


MAX_REQUEST_LINE = 8190
"""Longest request target answered; gunicorn runs without its own limit so this answer is JSON."""


class LimitRequestLine:
    """Answers an over-long request target with the JSON 414 every other error has."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        target = environ.get("RAW_URI") or environ.get("PATH_INFO", "") + "?" + environ.get("QUERY_STRING", "")
        if len(target) <= MAX_REQUEST_LINE:
            return self.app(environ, start_response)
        body = json.dumps(
            {
                "code": 414,
                "status": "Request-URI Too Long",
                "message": f"the request target is longer than {MAX_REQUEST_LINE} characters",
            }
        ).encode()
        start_response(
            "414 Request-URI Too Long", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]
