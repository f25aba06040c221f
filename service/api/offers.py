"""Offers: read one (the link in a volunteer's message), accept or decline."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from service import offers
from service.api import present
from service.api.auth import current_principal, deps, errors, requires
from service.api.blueprint import Blueprint
from service.api.schemas import OfferSchema, OptionalReasonSchema
from service.models import Role

blp = Blueprint("offers", __name__, url_prefix="/api/v1/offers", description="Offers to volunteers")


@blp.route("/<string:offer_id>")
class OfferRead(MethodView):
    @requires(blp, Role.VOLUNTEER, Role.CAPTAIN, Role.DISPATCHER)
    @blp.response(200, OfferSchema)
    @errors(blp, 404)
    def get(self, offer_id: str) -> dict[str, Any]:
        """One offer with its need as the volunteer may see it: the link sent with the offer's message."""
        offer = offers.read_offer(deps=deps(), offer_id=offer_id, principal=current_principal())
        return present.offer_view(offer, deps().store.needs.get(offer.need_id))


@blp.route("/<string:offer_id>/accept")
class OfferAccept(MethodView):
    @requires(blp, Role.VOLUNTEER, Role.CAPTAIN, Role.DISPATCHER)
    @blp.response(200, OfferSchema)
    @errors(blp, 404, 409)
    def post(self, offer_id: str) -> dict[str, Any]:
        """Accept a pending offer before it expires."""
        offer = offers.accept_offer(deps=deps(), offer_id=offer_id, principal=current_principal())
        return present.offer_view(offer, deps().store.needs.get(offer.need_id))


@blp.route("/<string:offer_id>/decline")
class OfferDecline(MethodView):
    @requires(blp, Role.VOLUNTEER, Role.CAPTAIN, Role.DISPATCHER)
    @blp.arguments(OptionalReasonSchema, required=False)
    @blp.response(200, OfferSchema)
    @errors(blp, 404, 409, 422)
    def post(self, body: dict[str, Any] | None, offer_id: str) -> dict[str, Any]:
        """Decline a pending offer (optionally saying why); the next volunteer is offered."""
        offer = offers.decline_offer(
            deps=deps(), offer_id=offer_id, principal=current_principal(), reason=(body or {}).get("reason")
        )
        return present.offer_view(offer, deps().store.needs.get(offer.need_id))
