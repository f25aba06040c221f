"""Requester tracking: follow a need like a parcel, and give feedback. No token; the code is the key."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from service import incidents, needs
from service.api import present
from service.api.auth import deps, errors
from service.api.blueprint import Blueprint
from service.api.schemas import FeedbackSchema, TrackSchema
from service.deps import Deps
from service.models import Need, OfferStatus

blp = Blueprint("track", __name__, url_prefix="/api/v1/track", description="Requester tracking")


def tracking_view(*, deps: Deps, need: Need) -> dict[str, Any]:
    """What the requester sees of their need (TrackSchema): the JSON answer and the page at /t/{code} both show
    this, so neither shows more: first names and distances of the helpers, never phone numbers."""
    store = deps.store
    helpers = []
    for offer in store.offers.of_need(need.id):
        if offer.status not in (OfferStatus.ACCEPTED, OfferStatus.COMPLETED):
            continue
        volunteer = store.volunteers.get(offer.volunteer_id)
        if volunteer is not None:
            helpers.append(
                {
                    "first_name": present.first_name(volunteer.name),
                    "distance_km": round(offer.distance_km, 1),
                    "status": offer.status,
                }
            )
    return {
        "kind": need.kind,
        "status": need.status,
        "status_reason": need.status_reason,
        "created_at": need.created_at,
        "deadline": need.deadline,
        "committed_deadline": need.committed_deadline,
        "volunteers": helpers,
        "timeline": [present.public_event(e) for e in store.needs.events(need.id)],
        "rating": need.rating,
        "incident": incidents.for_requester(deps=deps, need=need),
    }


@blp.route("/<string:code>")
class Track(MethodView):
    @blp.response(200, TrackSchema)
    @errors(blp, 404)
    def get(self, code: str) -> dict[str, Any]:
        """Status, timeline and deadline of a need, by its tracking code; no phone numbers."""
        return tracking_view(deps=deps(), need=needs.need_for_tracking(deps=deps(), code=code))


@blp.route("/<string:code>/feedback")
class Feedback(MethodView):
    @blp.arguments(FeedbackSchema)
    @blp.response(200, TrackSchema)
    @errors(blp, 404, 409, 422)
    def post(self, body: dict[str, Any], code: str) -> dict[str, Any]:
        """Rate the help (1-5); fixed=false reopens the need instead (a closed one only within the reopen window).
        409 when the need is not done yet, already closed (a rating is taken once), or closed too long ago."""
        needs.give_feedback(
            deps=deps(), code=code, rating=body["rating"], comment=body.get("comment"), fixed=body["fixed"]
        )
        return tracking_view(deps=deps(), need=needs.need_for_tracking(deps=deps(), code=code))
