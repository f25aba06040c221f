"""Volunteer endpoints: registration, profile, live position, availability, offers."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from service import access, volunteers
from service.api import present
from service.api.auth import current_principal, deps, errors, requires
from service.api.blueprint import Blueprint
from service.api.schemas import (
    AvailabilitySchema,
    LocationSchema,
    NoQuerySchema,
    OfferListSchema,
    VolunteerCreateSchema,
    VolunteerPageSchema,
    VolunteerQuerySchema,
    VolunteerSchema,
    VolunteerUpdateSchema,
)
from service.models import Location, Role

blp = Blueprint("volunteers", __name__, url_prefix="/api/v1/volunteers", description="Volunteers")

SELF = (Role.DISPATCHER, Role.VOLUNTEER, Role.CAPTAIN)


def parse_near(text: str | None) -> Location | None:
    if not text:
        return None
    lat, lon = (float(part) for part in text.split(","))
    return Location(lat=lat, lon=lon)


@blp.route("")
class Volunteers(MethodView):
    @requires(blp, Role.DISPATCHER, Role.OPS)
    @blp.arguments(VolunteerQuerySchema, location="query", unknown="raise")
    @blp.response(200, VolunteerPageSchema)
    @errors(blp, 422)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List volunteers: filter by skill, duty, grid, or nearness to a point (live position)."""
        items, next_cursor = volunteers.list_volunteers(
            deps=deps(),
            skill=args.get("skill"),
            on_duty=args.get("on_duty"),
            grid=args.get("grid"),
            near=parse_near(args.get("near")),
            radius_km=args["radius_km"],
            limit=args["limit"],
            cursor=args.get("cursor"),
        )
        return {"items": [present.volunteer_view(v) for v in items], "next_cursor": next_cursor}

    @requires(blp, Role.DISPATCHER)
    @blp.arguments(VolunteerCreateSchema)
    @blp.response(201, VolunteerSchema)
    @errors(blp, 422)
    def post(self, volunteer_in: dict[str, Any]) -> dict[str, Any]:
        """Register a volunteer (off duty unless on_duty is true)."""
        volunteer_in["skills"] = [s.value for s in volunteer_in["skills"]]
        volunteer_in["locale"] = volunteer_in["locale"].value
        return present.volunteer_view(volunteers.register_volunteer(deps=deps(), volunteer_in=volunteer_in))


@blp.route("/<string:volunteer_id>")
class VolunteerById(MethodView):
    @requires(blp, Role.DISPATCHER, Role.VOLUNTEER, Role.CAPTAIN, Role.OPS)
    @blp.response(200, VolunteerSchema)
    @errors(blp, 404)
    def get(self, volunteer_id: str) -> dict[str, Any]:
        """Read one volunteer (a volunteer token reads only itself)."""
        if current_principal().role is not Role.OPS:
            access.require_self_or_dispatcher(current_principal(), volunteer_id)
        return present.volunteer_view(volunteers.get_volunteer(deps=deps(), volunteer_id=volunteer_id))

    @requires(blp, *SELF)
    @blp.arguments(VolunteerUpdateSchema)
    @blp.response(200, VolunteerSchema)
    @errors(blp, 404, 422)
    def patch(self, changes: dict[str, Any], volunteer_id: str) -> dict[str, Any]:
        """Change a volunteer's profile: only the fields sent change; skills, grid and team only by a dispatcher."""
        access.require_self_or_dispatcher(current_principal(), volunteer_id)
        access.require_profile_change(current_principal(), set(changes))
        if "skills" in changes:
            changes["skills"] = [s.value for s in changes["skills"]]
        if "locale" in changes:
            changes["locale"] = changes["locale"].value
        return present.volunteer_view(
            volunteers.update_volunteer(deps=deps(), volunteer_id=volunteer_id, changes=changes)
        )


@blp.route("/<string:volunteer_id>/location")
class VolunteerLocation(MethodView):
    @requires(blp, *SELF)
    @blp.arguments(LocationSchema)
    @blp.response(200, VolunteerSchema)
    @errors(blp, 404, 422)
    def put(self, position: dict[str, float], volunteer_id: str) -> dict[str, Any]:
        """Report the volunteer's live position; matching and the near filter use it."""
        access.require_self_or_dispatcher(current_principal(), volunteer_id)
        return present.volunteer_view(
            volunteers.set_location(deps=deps(), volunteer_id=volunteer_id, lat=position["lat"], lon=position["lon"])
        )


@blp.route("/<string:volunteer_id>/availability")
class VolunteerAvailability(MethodView):
    @requires(blp, *SELF)
    @blp.arguments(AvailabilitySchema)
    @blp.response(200, VolunteerSchema)
    @errors(blp, 404, 422)
    def put(self, body: dict[str, bool], volunteer_id: str) -> dict[str, Any]:
        """Go on or off duty; going off duty withdraws pending offers."""
        access.require_self_or_dispatcher(current_principal(), volunteer_id)
        return present.volunteer_view(
            volunteers.set_availability(deps=deps(), volunteer_id=volunteer_id, on_duty=body["on_duty"])
        )


@blp.route("/<string:volunteer_id>/offers")
class VolunteerOffers(MethodView):
    @requires(blp, *SELF)
    @blp.arguments(NoQuerySchema, location="query", unknown="raise")
    @blp.response(200, OfferListSchema)
    @errors(blp, 404, 422)
    def get(self, _query: dict[str, Any], volunteer_id: str) -> dict[str, Any]:
        """The volunteer's offers, newest first: pending ones to answer, and past ones."""
        access.require_self_or_dispatcher(current_principal(), volunteer_id)
        store = deps().store
        volunteers.get_volunteer(deps=deps(), volunteer_id=volunteer_id)
        offers = store.offers.get_many(store.offers.ids_of_volunteer(volunteer_id))
        needs = {n.id: n for n in store.needs.get_many(sorted({o.need_id for o in offers})) if n is not None}
        return {"items": [present.offer_view(o, needs.get(o.need_id)) for o in offers]}
