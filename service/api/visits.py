"""Visit endpoints: the visits due or overdue across the register, and recording a visit's outcome."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from service import visits
from service.api import present
from service.api.auth import current_principal, deps, errors, requires
from service.api.blueprint import Blueprint
from service.api.schemas import VisitOutcomeSchema, VisitPageSchema, VisitQuerySchema, VisitSchema
from service.models import Role

blp = Blueprint("visits", __name__, url_prefix="/api/v1/visits", description="Recurring visits of households")


@blp.route("")
class Visits(MethodView):
    @requires(blp, Role.DISPATCHER, Role.OPS, Role.CAPTAIN)
    @blp.arguments(VisitQuerySchema, location="query", unknown="raise")
    @blp.response(200, VisitPageSchema)
    @errors(blp, 422)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List visits of one status (due by default, or overdue), the most recently planned first (a captain's
        list holds the visits of their grids' households only)."""
        items, next_cursor = visits.list_visits(
            deps=deps(),
            principal=current_principal(),
            status=args["status"],
            limit=args["limit"],
            cursor=args.get("cursor"),
        )
        return {"items": [present.visit_view(v) for v in items], "next_cursor": next_cursor}


@blp.route("/<string:visit_id>/outcome")
class VisitOutcome(MethodView):
    @requires(blp, Role.DISPATCHER, Role.VOLUNTEER, Role.CAPTAIN)
    @blp.arguments(VisitOutcomeSchema)
    @blp.response(200, VisitSchema)
    @errors(blp, 404, 409, 422)
    def post(self, body: dict[str, Any], visit_id: str) -> dict[str, Any]:
        """Close a due or overdue visit: all_well, or needs_help with the kind of help (a need of that kind is
        recorded for the household, carrying household_id and visit_id). By the volunteer who accepted the
        visit's need, a captain of the household's grid, or a dispatcher; the visit need is then done, and the
        household's next visit planned."""
        visit = visits.record_outcome(
            deps=deps(),
            visit_id=visit_id,
            outcome=body["outcome"],
            kind=body.get("kind"),
            note=body.get("note"),
            principal=current_principal(),
        )
        return present.visit_view(visit)
