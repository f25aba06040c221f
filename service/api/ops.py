"""Operations at the HTTP edge: RQ dashboard, /metrics, request ids and JSON logs, idempotent
retries and rate limits."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request, session
from werkzeug.exceptions import HTTPException

from service.api.auth import principal_for
from service.api.blueprint import bulk_items
from service.api.errors import error_response
from service.deps import Deps
from service.exceptions import AidlineError
from service.logs import request_id_var
from service.models import Principal, Role
from worker.monitoring import AidlineCollector

log = logging.getLogger("aidline.api")

DASHBOARD_PREFIX = "/ops/rq"
READ_METHODS = ("GET", "HEAD", "OPTIONS")
DASHBOARD_READS = frozenset(
    f"rq_dashboard.{view}"
    for view in (
        "favicon",
        "static",
        "queues_overview",
        "workers_overview",
        "jobs_overview",
        "job_view",
        "list_queues",
        "list_jobs",
        "job_info",
        "list_workers",
    )
)
"""The RQ dashboard's pages and data that only read: everything else it serves changes jobs or queues (some of it
answers GET too, e.g. requeueing a queue's failed jobs), so it is refused whatever the method."""
"""What the dashboard answers: it shows the queues; emptying, requeueing and deleting jobs are refused."""
IDEMPOTENCY_TTL = 24 * 3600
REFUSED_BEFORE_EXECUTING = (400, 413, 415, 422)
"""Answers to a body refused as sent (not JSON, too large, invalid): nothing was done, so the key stays free."""
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
        if request.method not in READ_METHODS or request.endpoint not in DASHBOARD_READS:
            return error_response(
                403, "the RQ dashboard is read-only: the ops role reads everything and changes nothing"
            )
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


def body_fingerprint(data: bytes) -> str:
    """The same request body however its JSON is spelled (key order, whitespace); other bodies as their bytes."""
    try:
        canonical = json.dumps(json.loads(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except ValueError:  # not JSON (or not UTF-8): the bytes as sent
        return hashlib.sha256(b"bytes|" + data).hexdigest()
    return hashlib.sha256(b"json|" + canonical.encode()).hexdigest()


def init_idempotency(app: Flask, deps: Deps) -> None:
    """Idempotency-Key on POST: a retry with the same key and body gets the first answer again.

    Only answers of requests that started executing are kept: a body refused as sent (400, 413, 415, 422) leaves
    the key free for the corrected body."""

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
        body_hash = body_fingerprint(request.get_data())
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
        if response.status_code >= 500 or response.status_code in (401, 409, 429, *REFUSED_BEFORE_EXECUTING):
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


RATE_LIMIT_EXEMPT = ("/healthz", "/readyz", "/metrics", "/api/v1/openapi.json")
INBOUND_PREFIX = "/api/v1/inbound/"
CONSOLE_PREFIX = "/console/"
CONSOLE_STATIC = "/console/static/"


def console_principal() -> Principal | None:
    """The console's signed session (its token id and role): a signed-in console spends its token's budget."""
    token_id, role = session.get("token_id"), session.get("role")
    if isinstance(token_id, str) and token_id and role in set(Role):
        return Principal(role=Role(role), token_id=token_id)
    return None


def init_rate_limits(app: Flask, deps: Deps) -> None:
    """Limits kept in Redis (flask-limiter), one budget per caller across the whole API; 429 with Retry-After
    when it is spent.

    A valid token counts against its own budget, as large as its role's limit: dispatchers and intake clients far
    above what the service can absorb (a surge of needs is the service's purpose, not abuse), volunteers and ops
    moderate. Without a valid token (tracking, feedback, /t/ links, a wrong token) a request counts against its
    client address, an SMS gateway's inbound replies against a larger budget of their own. A bulk operation
    counts every record it carries."""
    from flask_limiter import ApplicationLimit, Limiter
    from limits import parse

    settings = deps.settings
    role_limits = {
        Role.DISPATCHER: settings.rate_limit_dispatcher,
        Role.INTAKE: settings.rate_limit_intake,
        Role.OPS: settings.rate_limit_ops,
        Role.VOLUNTEER: settings.rate_limit_volunteer,
        Role.CAPTAIN: settings.rate_limit_captain,
    }

    def budget() -> tuple[str, str]:
        """Whose budget this request spends, and its limit; worked out once per request."""
        if "rate_budget" not in g:
            principal = None
            token = ops_token_from_request()
            if token:
                try:
                    principal = principal_for(token)
                except AidlineError:
                    principal = None  # a wrong token spends its address's budget: guessing tokens is not free
            address = request.remote_addr or "unknown"
            if principal is None and request.path.startswith(CONSOLE_PREFIX):
                principal = console_principal()
            if principal is not None:
                g.rate_budget = (f"token:{principal.token_id}", role_limits[principal.role])
                g.rate_budget_of = ("this token", f"AIDLINE_RATE_LIMIT_{principal.role.value.upper()}")
            elif request.path.startswith(INBOUND_PREFIX):
                g.rate_budget = (f"inbound:{address}", settings.rate_limit_inbound)
                g.rate_budget_of = ("this address's SMS gateway", "AIDLINE_RATE_LIMIT_INBOUND")
            else:
                g.rate_budget = (f"address:{address}", settings.rate_limit_anonymous)
                g.rate_budget_of = ("this address (no valid token)", "AIDLINE_RATE_LIMIT_ANONYMOUS")
        spender: tuple[str, str] = g.rate_budget
        return spender

    def refusal() -> str:
        """The 429's message: whose budget is spent, its limit and the setting that sets it."""
        limit = budget()[1]
        whose, setting = g.rate_budget_of
        try:
            shown = "; ".join(str(parse(part)) for part in limit.split(";") if part.strip())
        except ValueError:
            shown = limit
        return f"too many requests for {whose}: {shown} ({setting})"

    def cost() -> int:
        """A bulk operation counts each record in its list (at least one); any other request counts one."""
        items = bulk_items(app)
        if items is None:
            return 1
        try:
            body = request.get_json(silent=True)
        except HTTPException:  # over the body limit: the 413 is answered by the view, this request counts once
            return 1
        records = body.get(items) if isinstance(body, dict) else None
        return max(1, len(records)) if isinstance(records, list) else 1

    # registered before the limiter's own hook, so it runs after it and sees its headers
    @app.after_request
    def retry_after_only_when_limited(response: Response) -> Response:
        if response.status_code not in (429, 503):
            response.headers.pop("Retry-After", None)
        return response

    app.config.setdefault("RATELIMIT_STORAGE_URI", settings.redis_url)
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    # a sliding window: no double burst at a window's edge, and a refused request (a refused batch) spends nothing
    app.config.setdefault("RATELIMIT_STRATEGY", "sliding-window-counter")
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    app.config.setdefault("RATELIMIT_KEY_PREFIX", settings.key_prefix + "limits")
    limiter = Limiter(
        lambda: budget()[0],
        app=app,
        application_limits=[ApplicationLimit(lambda: budget()[1], cost=cost, error_message=refusal)],
        enabled=settings.rate_limits,
    )
    app.extensions["aidline_limiter"] = limiter

    @limiter.request_filter
    def exempt() -> bool:
        if request.path in RATE_LIMIT_EXEMPT or request.path.startswith(("/api/docs", CONSOLE_STATIC)):
            return True
        return not budget()[1]  # this caller's limit is set empty: unlimited
