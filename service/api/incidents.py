"""Incident endpoints: list, read, declare and close incidents (needs of one family in one area)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from service import incidents
from service.api import present
from service.api.auth import current_principal, deps, errors, requires
from service.api.blueprint import Blueprint
from service.api.schemas import IncidentCreateSchema, IncidentPageSchema, IncidentQuerySchema, IncidentSchema
from service.api.volunteers import parse_near
from service.models import Incident, Role

blp = Blueprint(
    "incidents", __name__, url_prefix="/api/v1/incidents", description="Incidents: needs of one family in one area"
)


def view(incident: Incident) -> dict[str, Any]:
    return present.incident_view(incident, incidents.report(deps=deps(), incident=incident))


@blp.route("")
class Incidents(MethodView):
    @requires(blp, Role.DISPATCHER, Role.OPS)
    @blp.arguments(IncidentQuerySchema, location="query", unknown="raise")
    @blp.response(200, IncidentPageSchema)
    @errors(blp, 422)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List incidents, newest first; `near` + `radius_km` keeps those whose centre is within the radius."""
        items, next_cursor = incidents.list_incidents(
            deps=deps(),
            principal=current_principal(),
            status=args.get("status"),
            family=args.get("family"),
            near=parse_near(args.get("near")),
            radius_km=args["radius_km"],
            limit=args["limit"],
            cursor=args.get("cursor"),
        )
        return {"items": [view(i) for i in items], "next_cursor": next_cursor}

    @requires(blp, Role.DISPATCHER)
    @blp.arguments(IncidentCreateSchema)
    @blp.response(201, IncidentSchema)
    @errors(blp, 422)
    def post(self, incident_in: dict[str, Any]) -> dict[str, Any]:
        """Declare an incident: every open need of the family inside the area, not yet in an incident, joins it."""
        incident = incidents.declare_incident(deps=deps(), incident_in=incident_in, principal=current_principal())
        return view(incident)


@blp.route("/<string:incident_id>")
class IncidentById(MethodView):
    @requires(blp, Role.DISPATCHER, Role.OPS)
    @blp.response(200, IncidentSchema)
    @errors(blp, 404)
    def get(self, incident_id: str) -> dict[str, Any]:
        """Read one incident: its needs, their counts by status, how many are vulnerable, and its area."""
        return view(incidents.read_incident(deps=deps(), incident_id=incident_id, principal=current_principal()))


@blp.route("/<string:incident_id>/close")
class IncidentClose(MethodView):
    @requires(blp, Role.DISPATCHER)
    @blp.response(200, IncidentSchema)
    @errors(blp, 404, 409)
    def post(self, incident_id: str) -> dict[str, Any]:
        """Close an incident: it takes no more needs (409 when it is closed already)."""
        return view(incidents.close_incident(deps=deps(), incident_id=incident_id, principal=current_principal()))
