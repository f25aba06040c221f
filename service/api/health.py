"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from service.api.auth import deps, errors
from service.api.blueprint import Blueprint
from service.api.schemas import HealthSchema
from service.exceptions import ServiceUnavailable
from worker.monitoring import live_worker_count

blp = Blueprint("health", __name__, url_prefix="", description="Health", rate_limited=False, uses_redis=False)


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    def get(self) -> dict[str, Any]:
        """The API process is alive (does not touch Redis)."""
        return {"status": "ok"}


@blp.route("/readyz")
class Ready(MethodView):
    @blp.response(200, HealthSchema)
    @errors(blp, 503)
    def get(self) -> dict[str, Any]:
        """Redis answers and at least one worker is alive; 503 with the reason otherwise."""
        try:
            deps().store.ping()
            workers = live_worker_count(deps())
        except Exception as exc:  # noqa: BLE001 - any failure here means not ready
            raise ServiceUnavailable(f"redis is not reachable: {type(exc).__name__}") from exc
        if workers == 0:
            raise ServiceUnavailable("no worker is alive: needs would wait unmatched")
        return {"status": "ready"}
