"""Need endpoints: intake, lists, the timeline, and every lifecycle action."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from werkzeug.routing import BaseConverter

from service import access, captains, dispatch, needs, offers
from service.api import present
from service.api.auth import current_principal, deps, errors, requires
from service.api.blueprint import Blueprint
from service.api.schemas import (
    AckSchema,
    AssignSchema,
    EventListSchema,
    NeedBatchResultSchema,
    NeedBatchSchema,
    NeedCreateSchema,
    NeedPageSchema,
    NeedQuerySchema,
    NeedSchema,
    NoQuerySchema,
    NotificationListSchema,
    OptionalReasonSchema,
    PrioritySchema,
    ProgressSchema,
    ReasonSchema,
)
from service.api.volunteers import parse_near
from service.models import Principal, Role

blp = Blueprint("needs", __name__, url_prefix="/api/v1/needs", description="Needs and their lifecycle")

D = Role.DISPATCHER


def view(need_id: str, principal: Principal) -> dict[str, Any]:
    need, offers = needs.read_need(deps=deps(), need_id=need_id, principal=principal)
    team = needs.team_of(deps=deps(), need=need, offers=offers, principal=principal)
    return present.need_view(need, offers, principal, team=team)


@blp.route("")
class Needs(MethodView):
    @requires(blp, D, Role.OPS, Role.INTAKE, Role.CAPTAIN)
    @blp.arguments(NeedQuerySchema, location="query", unknown="raise")
    @blp.response(200, NeedPageSchema)
    @errors(blp, 422)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List needs, newest first; intake tokens see only the needs they sent, captains those of their grids."""
        principal = current_principal()
        items, next_cursor = needs.list_needs(
            deps=deps(),
            principal=principal,
            status=args.get("status"),
            kind=args.get("kind"),
            priority=args.get("priority"),
            near=parse_near(args.get("near")),
            radius_km=args["radius_km"],
            limit=args["limit"],
            cursor=args.get("cursor"),
        )
        store = deps().store
        return {
            "items": [present.need_view(n, store.offers.of_need(n.id), principal) for n in items],
            "next_cursor": next_cursor,
        }

    @requires(blp, D, Role.INTAKE)
    @blp.arguments(NeedCreateSchema)
    @blp.response(201, NeedSchema)
    @errors(blp, 422, 503)
    def post(self, need_in: dict[str, Any]) -> dict[str, Any]:
        """Submit a need; it is queued for matching at once. Keep the tracking_code for the requester."""
        principal = current_principal()
        need = needs.submit_need(deps=deps(), need_in=need_in, principal=principal)
        return present.need_view(
            need, [], principal, team=needs.team_of(deps=deps(), need=need, offers=[], principal=principal)
        )


@blp.route("/batch")
class NeedBatch(MethodView):
    @requires(blp, D, Role.INTAKE)
    @blp.bulk("needs")
    @blp.arguments(NeedBatchSchema)
    @blp.response(201, NeedBatchResultSchema)
    @errors(blp, 422, 503)
    def post(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Submit up to 500 needs at once, all or none; they are queued for matching at once, in the order sent.

        Each item is what POST /needs takes, and each answer item what it answers. The body may be up to
        AIDLINE_MAX_BULK_CONTENT_LENGTH (default 4 MB); each need counts once against the rate limit."""
        principal = current_principal()
        created = needs.submit_needs(deps=deps(), needs_in=batch["needs"], principal=principal)
        team = needs.team_of(deps=deps(), need=created[0], offers=[], principal=principal) if created else None
        return {"items": [present.need_view(need, [], principal, team=team) for need in created]}


class NeedIdConverter(BaseConverter):
    """A need id in a path: any segment but `batch`, so that /needs/batch is its own resource (GET on it is a
    405, not a need looked up by that id)."""

    regex = r"(?!batch$)[^/]+"


@blp.route("/<need:need_id>")
class NeedById(MethodView):
    @requires(blp, D, Role.OPS, Role.INTAKE, Role.VOLUNTEER, Role.CAPTAIN)
    @blp.response(200, NeedSchema)
    @errors(blp, 404)
    def get(self, need_id: str) -> dict[str, Any]:
        """Read one need with its assignments."""
        return view(need_id, current_principal())


@blp.route("/<string:need_id>/events")
class NeedEvents(MethodView):
    @requires(blp, D, Role.OPS, Role.INTAKE, Role.VOLUNTEER, Role.CAPTAIN)
    @blp.arguments(NoQuerySchema, location="query", unknown="raise")
    @blp.response(200, EventListSchema)
    @errors(blp, 404, 422)
    def get(self, _query: dict[str, Any], need_id: str) -> dict[str, Any]:
        """The need's timeline: every change, oldest first, with time, actor and detail."""
        events = needs.need_events(deps=deps(), need_id=need_id, principal=current_principal())
        return {"items": [present.event_view(e) for e in events]}


@blp.route("/<string:need_id>/cancel")
class NeedCancel(MethodView):
    @requires(blp, D, Role.INTAKE, Role.CAPTAIN)
    @blp.arguments(ReasonSchema)
    @blp.response(200, NeedSchema)
    @errors(blp, 404, 409, 422)
    def post(self, body: dict[str, str], need_id: str) -> dict[str, Any]:
        """Cancel a need with a reason; its volunteers are released."""
        principal = current_principal()
        needs.cancel_need(deps=deps(), need_id=need_id, reason=body["reason"], principal=principal)
        return view(need_id, principal)


@blp.route("/<string:need_id>/assign")
class NeedAssign(MethodView):
    @requires(blp, D, Role.CAPTAIN)
    @blp.arguments(AssignSchema)
    @blp.response(200, NeedSchema)
    @errors(blp, 404, 409, 422)
    def post(self, body: dict[str, Any], need_id: str) -> dict[str, Any]:
        """Assign a chosen volunteer directly, without an offer round (capacity still applies), to `role` or the
        first role not yet filled whose skills they have; it takes the place of the role's pending offers when
        the role has no free place. 409 on `volunteer_id` when the volunteer is off duty or lacks the skills."""
        offers.assign_volunteer(
            deps=deps(),
            need_id=need_id,
            volunteer_id=body["volunteer_id"],
            principal=current_principal(),
            role=body.get("role"),
            override=body["override"],
        )
        return view(need_id, current_principal())


@blp.route("/<string:need_id>/rematch")
class NeedRematch(MethodView):
    @requires(blp, D, Role.CAPTAIN)
    @blp.response(200, NeedSchema)
    @errors(blp, 404, 409)
    def post(self, need_id: str) -> dict[str, Any]:
        """Search again: before assignment, withdraw pending offers and include volunteers tried before;
        once assigned, release the assigned volunteers and offer the next nearest."""
        dispatch.rematch_need(deps=deps(), need_id=need_id, principal=current_principal())
        return view(need_id, current_principal())


@blp.route("/<string:need_id>/defer")
class NeedDefer(MethodView):
    @requires(blp, D, Role.CAPTAIN)
    @blp.arguments(ReasonSchema)
    @blp.response(200, NeedSchema)
    @errors(blp, 404, 409, 422)
    def post(self, body: dict[str, str], need_id: str) -> dict[str, Any]:
        """Defer a need that cannot be done yet; the requester sees the reason."""
        needs.defer_need(deps=deps(), need_id=need_id, reason=body["reason"], principal=current_principal())
        return view(need_id, current_principal())


@blp.route("/<string:need_id>/reopen")
class NeedReopen(MethodView):
    @requires(blp, D, Role.CAPTAIN)
    @blp.arguments(OptionalReasonSchema, required=False)
    @blp.response(200, NeedSchema)
    @errors(blp, 404, 409, 422)
    def post(self, body: dict[str, str] | None, need_id: str) -> dict[str, Any]:
        """Put a deferred, escalated, cancelled, done or closed need back in the queue."""
        principal = current_principal()
        access.require_grid(principal, needs.load_need(deps=deps(), need_id=need_id).grid)
        needs.reopen_need(deps=deps(), need_id=need_id, reason=(body or {}).get("reason"), actor=principal.actor)
        return view(need_id, principal)


@blp.route("/<string:need_id>/ack")
class NeedAck(MethodView):
    @requires(blp, D, Role.CAPTAIN)
    @blp.response(200, AckSchema)
    @errors(blp, 404, 409)
    def post(self, need_id: str) -> dict[str, Any]:
        """Acknowledge an escalation: its ladder stops climbing (nobody further is told); the need is otherwise
        unchanged. A captain of the need's grid or a dispatcher; again: the first acknowledgement (`first`
        false); 409 when no escalation of the need waits for one."""
        done = captains.acknowledge(deps=deps(), need_id=need_id, principal=current_principal())
        return {
            "need_id": need_id,
            "acknowledged_by": done.acked_by,
            "acknowledged_at": done.acked_at,
            "tier": done.tier,
            "first": done.first,
        }


@blp.route("/<string:need_id>/priority")
class NeedPriority(MethodView):
    @requires(blp, D, Role.CAPTAIN)
    @blp.arguments(PrioritySchema)
    @blp.response(200, NeedSchema)
    @errors(blp, 404, 409, 422)
    def post(self, body: dict[str, Any], need_id: str) -> dict[str, Any]:
        """Raise or lower a need's priority (409 once done, closed or cancelled); it counts from the next match
        on, and the deadline stays."""
        needs.change_priority(deps=deps(), need_id=need_id, priority=body["priority"], principal=current_principal())
        return view(need_id, current_principal())


@blp.route("/<string:need_id>/progress")
class NeedProgress(MethodView):
    @requires(blp, D, Role.VOLUNTEER, Role.CAPTAIN)
    @blp.arguments(ProgressSchema)
    @blp.response(200, NeedSchema)
    @errors(blp, 404, 409, 422)
    def post(self, body: dict[str, Any], need_id: str) -> dict[str, Any]:
        """An assigned volunteer reports en_route, on_site or done."""
        principal = current_principal()
        needs.report_progress(
            deps=deps(), need_id=need_id, status=body["status"], note=body.get("note"), principal=principal
        )
        return view(need_id, principal)


@blp.route("/<string:need_id>/notifications")
class NeedNotifications(MethodView):
    @requires(blp, D, Role.OPS)
    @blp.arguments(NoQuerySchema, location="query", unknown="raise")
    @blp.response(200, NotificationListSchema)
    @errors(blp, 404, 422)
    def get(self, _query: dict[str, Any], need_id: str) -> dict[str, Any]:
        """Every notification for this need: recipient, channel (secrets hidden; only its kind for ops), status and
        each attempt."""
        found = needs.need_deliveries(deps=deps(), need_id=need_id, principal=current_principal())
        keys = ("id", "topic", "recipient", "status", "reason", "channel", "created_at", "attempts")
        return {"items": [{k: d[k] for k in keys if k in d} for d in found]}
