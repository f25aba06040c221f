"""Household endpoints: the care register (households at attention levels) and each household's visits."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from service import households, visits
from service.api import present
from service.api.auth import current_principal, deps, errors, requires
from service.api.blueprint import Blueprint
from service.api.schemas import (
    HouseholdCreateSchema,
    HouseholdPageSchema,
    HouseholdQuerySchema,
    HouseholdSchema,
    HouseholdUpdateSchema,
    NoQuerySchema,
    VisitListSchema,
)
from service.api.volunteers import parse_near
from service.models import Role

blp = Blueprint(
    "households",
    __name__,
    url_prefix="/api/v1/households",
    description="The care register: households watched at an attention level, and their recurring visits",
)

D = Role.DISPATCHER


@blp.route("")
class Households(MethodView):
    @requires(blp, D, Role.OPS, Role.CAPTAIN)
    @blp.arguments(HouseholdQuerySchema, location="query", unknown="raise")
    @blp.response(200, HouseholdPageSchema)
    @errors(blp, 422)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List households, newest first: filter by grid, attention level, or nearness to a point (a captain's list
        holds the households of their grids only)."""
        principal = current_principal()
        items, next_cursor = households.list_households(
            deps=deps(),
            principal=principal,
            grid=args.get("grid"),
            attention_level=args.get("attention_level"),
            near=parse_near(args.get("near")),
            radius_km=args["radius_km"],
            limit=args["limit"],
            cursor=args.get("cursor"),
        )
        return {"items": [present.household_view(h, principal) for h in items], "next_cursor": next_cursor}

    @requires(blp, D, Role.CAPTAIN)
    @blp.arguments(HouseholdCreateSchema)
    @blp.response(201, HouseholdSchema)
    @errors(blp, 409, 422, 503)
    def post(self, household_in: dict[str, Any]) -> dict[str, Any]:
        """Register a household; its first visit is planned at once, at its attention level's cadence. A captain
        registers households of their grids only (403 for another grid, or none)."""
        principal = current_principal()
        household = households.create_household(deps=deps(), household_in=household_in, principal=principal)
        return present.household_view(household, principal)


@blp.route("/<string:household_id>")
class HouseholdById(MethodView):
    @requires(blp, D, Role.OPS, Role.CAPTAIN)
    @blp.response(200, HouseholdSchema)
    @errors(blp, 404)
    def get(self, household_id: str) -> dict[str, Any]:
        """Read one household (ops: without the contact's phone, the exact address and the notes; a captain: one
        of their grids, else 404)."""
        principal = current_principal()
        return present.household_view(
            households.get_household(deps=deps(), household_id=household_id, principal=principal), principal
        )

    @requires(blp, D, Role.CAPTAIN)
    @blp.arguments(HouseholdUpdateSchema)
    @blp.response(200, HouseholdSchema)
    @errors(blp, 404, 409, 422)
    def patch(self, changes: dict[str, Any], household_id: str) -> dict[str, Any]:
        """Change a household: only the fields sent change; a new attention level replans its open visit. A
        captain changes households of their grids, and moves one only to another of their grids (else 403)."""
        principal = current_principal()
        household = households.update_household(
            deps=deps(), household_id=household_id, changes=changes, principal=principal
        )
        return present.household_view(household, principal)

    @requires(blp, D, Role.CAPTAIN)
    @blp.response(204)
    @errors(blp, 404)
    def delete(self, household_id: str) -> None:
        """Remove a household from the register; its open visit (and the visit's need, if out) is cancelled. A
        captain removes households of their grids only (else 403)."""
        households.delete_household(deps=deps(), household_id=household_id, principal=current_principal())


@blp.route("/<string:household_id>/visits")
class HouseholdVisits(MethodView):
    @requires(blp, D, Role.OPS, Role.CAPTAIN)
    @blp.arguments(NoQuerySchema, location="query", unknown="raise")
    @blp.response(200, VisitListSchema)
    @errors(blp, 404, 422)
    def get(self, _query: dict[str, Any], household_id: str) -> dict[str, Any]:
        """The household's visits, latest due first: the one planned ahead, the one due, and past ones."""
        found = visits.household_visits(deps=deps(), household_id=household_id, principal=current_principal())
        return {"items": [present.visit_view(v) for v in found]}
