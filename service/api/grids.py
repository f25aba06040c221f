"""Grid endpoints: each grid's rota of captains, and who is on call."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask.views import MethodView

from service import captains, clock
from service.api.auth import current_principal, deps, errors, requires
from service.api.blueprint import Blueprint
from service.api.schemas import OnCallSchema, RotaInSchema, RotaSchema
from service.models import Role, Rota

blp = Blueprint("grids", __name__, url_prefix="/api/v1/grids", description="Grids: captains' rotas and who is on call")


def rota_view(rota: Rota) -> dict[str, Any]:
    return {
        "grid": rota.grid,
        "timezone": deps().settings.timezone,
        "shifts": [asdict(s) for s in rota.shifts],
        "overrides": [asdict(o) for o in rota.overrides],
        "updated_at": rota.updated_at,
        "updated_by": rota.updated_by,
    }


@blp.route("/<string(maxlength=50):grid>/rota")
class GridRota(MethodView):
    @requires(blp, Role.DISPATCHER, Role.OPS, Role.CAPTAIN)
    @blp.response(200, RotaSchema)
    def get(self, grid: str) -> dict[str, Any]:
        """The grid's rota: weekly shifts and dated overrides, in local time (captains: their own grids)."""
        return rota_view(captains.get_rota(deps=deps(), grid=grid, principal=current_principal()))

    @requires(blp, Role.DISPATCHER, Role.CAPTAIN)
    @blp.arguments(RotaInSchema)
    @blp.response(200, RotaSchema)
    @errors(blp, 422)
    def put(self, rota_in: dict[str, Any], grid: str) -> dict[str, Any]:
        """Replace the grid's rota. Times are local (AIDLINE_TIMEZONE); `end` may be 24:00; shifts of one weekday
        must not overlap, nor overrides each other; each volunteer must hold a captain token for this grid.
        An override wins over the shifts while it lasts."""
        body = {
            "shifts": [{**s, "weekday": s["weekday"].value} for s in rota_in["shifts"]],
            "overrides": [
                {"from": o["start"], "to": o["end"], "volunteer_id": o["volunteer_id"]} for o in rota_in["overrides"]
            ],
        }
        rota = captains.put_rota(deps=deps(), grid=grid, rota_in=body, principal=current_principal())
        return rota_view(rota)


@blp.route("/<string(maxlength=50):grid>/on-call")
class GridOnCall(MethodView):
    @requires(blp, Role.DISPATCHER, Role.OPS, Role.INTAKE, Role.CAPTAIN)
    @blp.response(200, OnCallSchema)
    @errors(blp, 404)
    def get(self, grid: str) -> dict[str, Any]:
        """Who of the grid's captains is on call now, and until when; `volunteer_id` null when nobody is (then
        `until` says when somebody next is). 404 for a grid that no rota, captain token, household of the care
        register or ladder of its own names."""
        now = captains.read_on_call(deps=deps(), grid=grid, principal=current_principal())
        return {
            "grid": grid,
            "volunteer_id": now.volunteer_id,
            "until": clock.iso(now.until) if now.until is not None else None,
            "source": now.source,
        }
