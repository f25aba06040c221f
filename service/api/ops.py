"""Operations at the HTTP edge: RQ dashboard, /metrics, request ids and JSON logs, idempotent
retries and rate limits."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request

from service.api.auth import principal_for
from service.api.errors import error_response
from service.deps import Deps
from service.exceptions import AidlineError
from service.logs import request_id_var
from service.models import Role
from worker.monitoring import AidlineCollector

log = logging.getLogger("aidline.api")

DASHBOARD_PREFIX = "/ops/rq"
IDEMPOTENCY_TTL = 24 * 3600
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


def ops_token_from_request() -> str | None:
    """The ops token as a Bearer header, or as the password of HTTP Basic auth (for browsers)."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip()).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def init_dashboard(app: Flask, deps: Deps) -> None:
    """rq-dashboard mounted at /ops/rq, behind the ops role."""
    import rq_dashboard
    from rq_dashboard.web import setup_rq_connection

    app.config.setdefault("RQ_DASHBOARD_REDIS_URL", [deps.settings.redis_url])
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=DASHBOARD_PREFIX)
    with app.app_context():
        setup_rq_connection(app)

    @app.before_request
    def dashboard_needs_ops() -> Any:
        if not request.path.startswith(DASHBOARD_PREFIX):
            return None
        challenge = {"WWW-Authenticate": 'Basic realm="aidline ops"'}
        try:
            principal = principal_for(ops_token_from_request())
        except AidlineError:
            return error_response(
                401,
                "the RQ dashboard needs the ops token: as the Basic auth password or a Bearer token",
                headers=challenge,
            )
        if principal.role is not Role.OPS:
            return error_response(403, "the RQ dashboard is for the ops role")
        return None


def init_metrics(app: Flask, deps: Deps) -> None:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    registry = CollectorRegistry()
    registry.register(AidlineCollector(deps))

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus metrics: queues, needs by status, latencies, offers, escalations, failures."""
        return Response(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


def init_request_ids(app: Flask) -> None:
    """Every answer carries X-Request-Id; every log line and enqueued job carries it too."""

    @app.before_request
    def assign_request_id() -> None:
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        g.started = time.monotonic()
        request_id_var.set(g.request_id)

    @app.after_request
    def log_request(response: Response) -> Response:
        request_id = getattr(g, "request_id", None) or uuid.uuid4().hex
        response.headers["X-Request-Id"] = request_id
        took = (time.monotonic() - getattr(g, "started", time.monotonic())) * 1000
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "ms": round(took, 1),
                "request_id": request_id,
            },
        )
        return response


def init_idempotency(app: Flask, deps: Deps) -> None:
    """Idempotency-Key on POST: a retry with the same key and body gets the first answer again."""

    def scope() -> str:
        credential = request.headers.get("Authorization", "") or "anonymous"
        return hashlib.sha256(f"{credential}|{request.path}".encode()).hexdigest()

    @app.before_request
    def replay() -> Any:
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key:
            return None
        if len(key) > 200:
            return error_response(
                422,
                "Idempotency-Key is too long (at most 200 characters)",
                {"headers": {"Idempotency-Key": ["Longer than 200 characters."]}},
            )
        body_hash = hashlib.sha256(request.get_data()).hexdigest()
        first = deps.store.idempotency.claim(scope(), key, body_hash, ttl_seconds=IDEMPOTENCY_TTL)
        if first is None:
            g.idempotency_key = key
            return None
        if first.get("body_hash") != body_hash:
            return error_response(
                422,
                "this Idempotency-Key was used with a different body",
                {"headers": {"Idempotency-Key": ["Already used with another body."]}},
            )
        if "status" not in first:
            return error_response(
                409,
                "a request with this Idempotency-Key is still being processed; retry shortly",
                headers={"Retry-After": "1"},
            )
        response = app.response_class(first["body"], status=int(first["status"]), mimetype="application/json")
        response.headers["Idempotent-Replayed"] = "true"
        return response

    @app.after_request
    def remember(response: Response) -> Response:
        key = getattr(g, "idempotency_key", None)
        if key is None:
            return response
        if response.status_code >= 500 or response.status_code in (401, 409, 429):
            deps.store.idempotency.forget(scope(), key)  # not an answer worth replaying: let the retry run
        else:
            deps.store.idempotency.store(
                scope(),
                key,
                status=response.status_code,
                body=response.get_data(as_text=True),
                ttl_seconds=IDEMPOTENCY_TTL,
            )
        return response


def init_rate_limits(app: Flask, deps: Deps) -> None:
    """Per-token limits kept in Redis (flask-limiter): 429 with Retry-After when exceeded."""
    from flask_limiter import Limiter

    def key() -> str:
        credential = request.headers.get("Authorization", "")
        if credential:
            return "token:" + hashlib.sha256(credential.encode()).hexdigest()[:32]
        return "ip:" + (request.remote_addr or "unknown")

    # registered before the limiter's own hook, so it runs after it and sees its headers
    @app.after_request
    def retry_after_only_when_limited(response: Response) -> Response:
        if response.status_code not in (429, 503):
            response.headers.pop("Retry-After", None)
        return response

    app.config.setdefault("RATELIMIT_STORAGE_URI", deps.settings.redis_url)
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    app.config.setdefault("RATELIMIT_KEY_PREFIX", deps.settings.key_prefix + "limits")
    limiter = Limiter(key, app=app, default_limits=[deps.settings.rate_limit] if deps.settings.rate_limit else [])
    app.extensions["aidline_limiter"] = limiter

    @limiter.request_filter
    def exempt() -> bool:
        return request.path in ("/healthz", "/readyz", "/metrics") or request.path.startswith("/api/docs")
