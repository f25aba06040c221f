"""Drills: clean up after `aidline drill`."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask.views import MethodView

from service import drills
from service.api.auth import deps, requires
from service.api.blueprint import Blueprint
from service.api.schemas import DrillCleanSchema
from service.models import Role

blp = Blueprint("drills", __name__, url_prefix="/api/v1/drills", description="Drills replayed against the service")


@blp.route("/clean")
class DrillClean(MethodView):
    @requires(blp, Role.DISPATCHER)
    @blp.response(200, DrillCleanSchema)
    def post(self) -> dict[str, Any]:
        """Remove every need and volunteer a drill created (marked drill: true), each in one atomic step; a
        drill volunteer holding an accepted offer on a need not from a drill is kept and listed with why."""
        return asdict(drills.clean_drills(deps=deps()))
