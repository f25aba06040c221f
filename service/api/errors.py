"""One error format everywhere: {code, status, message, errors}, for every failure."""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Flask, Response, has_request_context, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from service.api.blueprint import size_text
from service.exceptions import AidlineError

log = logging.getLogger("aidline.api")


def error_response(
    code: int, message: str, errors: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> Response:
    payload: dict[str, Any] = {
        "code": code,
        "status": HTTP_STATUS_CODES.get(code, "Error"),
        "message": message,
    }
    if errors:
        payload["errors"] = errors
    response = jsonify(payload)
    response.status_code = code
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def field_names(errors: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the fields that failed, e.g. ['location.lat', 'phone']."""
    names: list[str] = []
    for key, value in errors.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            names += field_names(value, name)
        else:
            names.append(name)
    return names


def http_error(error: HTTPException) -> ResponseReturnValue:
    """Werkzeug and webargs errors (404, 405, 413, 422 validation ...) in our format."""
    code = error.code or 500
    data = getattr(error, "data", None) or {}
    errors = data.get("errors") or data.get("messages")
    message = data.get("message") or error.description or HTTP_STATUS_CODES.get(code, "Error")
    if errors and code in (400, 422) and "message" not in data:
        fields = [
            n.split(".", 1)[1] if n.split(".", 1)[0] in ("json", "query") and "." in n else n
            for n in field_names(errors)
        ]
        message = "invalid input: " + ", ".join(sorted(set(fields)))
    if code == 413 and has_request_context() and request.max_content_length:
        message = f"the body is larger than this endpoint takes: {size_text(request.max_content_length)}"
    headers = dict(data.get("headers") or {})
    if code == 405 and error.get_response().headers.get("Allow"):
        headers["Allow"] = error.get_response().headers["Allow"]
    return error_response(code, message, errors, headers)


def aidline_error(error: AidlineError) -> ResponseReturnValue:
    headers = {"WWW-Authenticate": 'Bearer realm="aidline"'} if error.status == 401 else None
    return error_response(error.status, error.message, error.errors, headers)


def redis_down(error: Exception) -> ResponseReturnValue:
    log.error("redis unavailable: %s", error)
    return error_response(
        503, "the data store is unavailable; nothing was changed, retry shortly", headers={"Retry-After": "5"}
    )


def unexpected(error: Exception) -> ResponseReturnValue:
    log.exception("unhandled error")
    return error_response(500, "internal error; it has been logged")


def init_app(app: Flask) -> None:
    """Register the handlers; called by the application factory."""
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(AidlineError, aidline_error)
    app.register_error_handler(redis.exceptions.ConnectionError, redis_down)
    app.register_error_handler(redis.exceptions.TimeoutError, redis_down)
    app.register_error_handler(redis.exceptions.BusyLoadingError, redis_down)
    app.register_error_handler(Exception, unexpected)
