"""Matching needs to volunteers, escalation, rematch and deadlines: what the match jobs do."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from service import access, captains, clock, jobs, lifecycle
from service.assignment import Option, Wanting, assign_jointly
from service.backlog import (
    DRAIN_SECONDS,
    MATCH,
    MATCH_BATCH,
    NOTIFY,
    URGENCY,
    announce,
    enqueue_drain,
    schedule_expiry,
    urgency_and_arrival,
    wait_for_match,
)
from service.catalog import ACCEPT_SECONDS, kind_spec
from service.deps import Deps
from service.exceptions import InvalidTransition
from service.lifecycle import Action
from service.matching import TIE_KM, FairLoad, distance_km
from service.models import Event, EventType, Need, NeedStatus, OfferStatus, Principal, Priority, Topic
from service.needs import change_status, load_need
from service.offers import LATENCY_BUCKETS, new_offer_id, release_offer, withdraw_pending
from service.store import Refusal, Refused
from service.store.offers import MatchRequest, MatchResult, Movable


@dataclass
class MatchOutcome:
    """What one match run did: offers made, and whether it escalated."""

    need_id: str
    offered: list[str] = field(default_factory=list)
    escalated: str | None = None
    skipped: str | None = None


def max_radius_km(deps: Deps, need: Need) -> float:
    """How far to search for the need: its own radius (the kind's unless widened), never past the maximum."""
    own = need.radius_km if need.radius_km is not None else kind_spec(need.kind).radius_km
    return min(own, deps.settings.max_radius_km)


def match_request(deps: Deps, need_id: str, moment: datetime) -> MatchRequest:
    """What one find-and-reserve step needs to know besides what Redis holds."""
    return MatchRequest(
        need_id=need_id,
        now_epoch=clock.epoch(moment),
        offer_id=new_offer_id(),
        priority_seconds=ACCEPT_SECONDS,
        max_offers=deps.settings.max_offers,
        first_ring_km=deps.settings.first_ring_km,
        area_km2=deps.settings.area_km2,
        max_radius_km=deps.settings.max_radius_km,
        tie_km=TIE_KM,
        buckets=LATENCY_BUCKETS,
        parallel=dict(deps.settings.parallel_offers),
        parallel_after_expiry=deps.settings.parallel_after_expiry,
        parallel_reach_km=deps.settings.parallel_reach_km,
        preempt_margin_km=deps.settings.preempt_margin_km,
        travel_speed_kmh=deps.settings.travel_speed_kmh,
        wait_class={p.value: URGENCY[jobs.DEFAULT if p is not Priority.LOW else jobs.LOW] for p in Priority},
        fair=fair_load(deps),
    )


def fair_load(deps: Deps) -> FairLoad:
    s = deps.settings
    return FairLoad(ratio=s.fair_slack_ratio, max_km=s.fair_slack_km, pool=s.fair_pool)


def match_need(*, deps: Deps, need_id: str) -> MatchOutcome:
    """Offer the need to the nearest eligible volunteers; escalate when nobody fits.

    Finding and reserving is one atomic store step (match.lua), so any number of workers may
    match at once: a need never gets more live offers than it asked for and a volunteer never
    goes above capacity. Safe to run any number of times.
    """
    try:
        result: MatchResult | Refused = deps.store.offers.match(match_request(deps, need_id, deps.clock.now()))
    except Refused as refused:
        result = refused
    return settle(deps, need_id, result)


def settle(deps: Deps, need_id: str, result: MatchResult | Refused) -> MatchOutcome:
    """What a match step's answer means: enqueue what it armed, or escalate a need out of offers."""
    outcome = MatchOutcome(need_id=need_id)
    if isinstance(result, Refused):
        refused = result
        if refused.reason is Refusal.NO_NEED:
            outcome.skipped = "no such need"
        elif refused.reason is Refusal.MAX_OFFERS:
            outcome.escalated = f"{refused.detail} offers made without enough acceptances"
            escalate(deps=deps, need=load_need(deps=deps, need_id=need_id), reason=outcome.escalated)
        else:
            outcome.skipped = f"need is {refused.detail}"
        return outcome
    follow_up(deps, result)
    outcome.offered = [o.offer_id for o in result.offers]
    outcome.escalated = result.escalated
    if result.escalated:
        captains.start_ladder(deps=deps, need_id=need_id, known=result.escalation)
    if result.missing <= 0 and not outcome.offered:
        outcome.skipped = "enough offers are out"
    return outcome


def follow_up(deps: Deps, result: MatchResult) -> None:
    """Enqueue what a match step armed: the notify drain for its offers, the expiry timer."""
    if result.arm_notify:
        enqueue_drain(deps, NOTIFY)
    if result.arm_match:
        enqueue_drain(deps, MATCH)
    if result.arm_expiry_at is not None:
        schedule_expiry(deps, result.arm_expiry_at)


WINDOW_STEP = 0.05
"""While ordinary needs wait for company, the backlog is looked at this often for an urgent one."""

JOINT_EXTRA = 4
"""Candidates listed per need beyond its open places, for the joint assignment to choose among."""


def match_together(*, deps: Deps, need_ids: list[str], moves: bool = True) -> list[MatchOutcome]:
    """Match needs waiting at the same moment together (service.assignment): urgent needs' places
    first, then the most places, then the least total travel; each need's offers are then made in
    one atomic step as usual, taking the chosen volunteers if they still fit (else its own search).

    Needs offered to several at once (critical ones), needs with several roles (each role is
    searched in turn, so they do not fit the one-list plan) and needs favouring volunteers (a
    household's previous visitor: continuity) are matched on their own first. Two
    round trips for the batch: one listing candidates, one reserving; with `moves` (not while a
    full batch waits behind this one), pending offers may be moved too (with_movable_offers).
    """
    moves = moves and deps.settings.move_saving_km > 0
    if len(need_ids) <= 1 and not moves:
        return [match_need(deps=deps, need_id=need_id) for need_id in need_ids]
    moment = deps.clock.now()
    requests = [match_request(deps, need_id, moment) for need_id in need_ids]
    found = deps.store.offers.candidates(requests, extra=JOINT_EXTRA)
    if any(c is not None and c.arm_match for c in found):
        enqueue_drain(deps, MATCH)  # listing woke an escalated urgent need
    wanting = [
        Wanting(request.need_id, c.places, tuple(Option(*o) for o in c.options), urgent=c.urgent)
        for request, c in zip(requests, found, strict=True)
        if c is not None and c.fanout == 1 and c.roles == 1 and not c.favoured and c.places > 0
    ]
    wanting, movable = with_movable_offers(deps, wanting, moment) if moves else (wanting, {})
    plan = assign_jointly(wanting) if len(wanting) > 1 else {}  # one need alone: its own order (fair load)
    moved = move_offers(deps, movable, plan)
    if len(wanting) > 1:
        deps.store.stats.incr("joint_batches")
        deps.store.stats.incr("joint_needs", len(wanting))
    urgent = {request.need_id for request, c in zip(requests, found, strict=True) if c is not None and c.urgent}
    # several-at-once and several roles first, then the planned (urgent first), then the rest (urgent first)
    alone = {
        request.need_id
        for request, c in zip(requests, found, strict=True)
        if c is not None and (c.fanout > 1 or c.roles > 1 or c.favoured)
    }
    order = sorted(
        requests,
        key=lambda r: (r.need_id not in alone, r.need_id not in plan, r.need_id not in urgent),
    )
    order += [match_request(deps, need_id, moment) for need_id in moved]
    results = deps.store.offers.match_many([replace(r, prefer=tuple(plan.get(r.need_id, ()))) for r in order])
    return [settle(deps, r.need_id, result) for r, result in zip(order, results, strict=True)]


MOVABLE_NEEDS = 6
"""At most this many other needs' pending offers are weighed for moving, per batch."""

MOVABLE_HOLDERS = 4
"""For each need, at most this many of the nearest volunteers holding a movable offer are looked at."""

MOVED_REASON = "moved: a volunteer nearer to it can come, and this one is the nearest for another need"


def with_movable_offers(
    deps: Deps, wanting: list[Wanting], moment: datetime
) -> tuple[list[Wanting], dict[str, Movable]]:
    """The joint problem widened by pending offers that could be moved.

    Needs arrive one by one: an ordinary need offered the nearest free volunteer may hold the
    one a need arriving later is nearest to, while someone free is as near to it. An ordinary
    need of the batch whose nearest free volunteer is further than the saving setting looks for
    volunteers nearer to it holding a movable pending offer (service.store's movable.lua); each
    such need then joins the problem with its current volunteer as its first option and the
    free volunteers it could have instead, costed `move_saving_km` more, so an offer is moved
    only when that shortens the total travel by more than that. Answers the widened problem and
    the movable offer of each need added.
    """
    saving = deps.settings.move_saving_km
    asking = [w for w in wanting if not w.urgent and w.places == 1 and w.options and w.options[0].distance_km > saving]
    if not asking:
        return wanting, {}
    found = deps.store.offers.movable(
        [(w.need_id, w.options[0].distance_km - saving) for w in asking],
        parallel=dict(deps.settings.parallel_offers),
        count=MOVABLE_HOLDERS,
    )
    batch = {w.need_id for w in wanting}
    held: dict[str, Movable] = {}
    reach: dict[str, float] = {}  # how far another volunteer of a held need may be for a move to pay
    for w, movables in zip(asking, found, strict=True):
        for m in movables:
            if m.need_id not in batch and (m.need_id in held or len(held) < MOVABLE_NEEDS):
                held.setdefault(m.need_id, m)
                gain = m.offer_km + w.options[0].distance_km - m.km - saving
                reach[m.need_id] = max(reach.get(m.need_id, 0.0), gain)
    if not held:
        return wanting, {}
    listed = deps.store.offers.candidates(
        [replace(match_request(deps, need_id, moment), replan=True, within_km=reach[need_id]) for need_id in held],
        extra=JOINT_EXTRA,
    )
    alternatives = {need_id: c.options for need_id, c in zip(held, listed, strict=True) if c is not None and c.options}
    held = {need_id: m for need_id, m in held.items() if need_id in alternatives}
    if not held:
        return wanting, {}
    # a holder's free capacity in this problem: what they have free and each movable offer they hold in it
    free_of: dict[str, int] = {}
    for m in held.values():
        free_of[m.volunteer_id] = free_of.get(m.volunteer_id, m.free) + 1
    widened = []
    for w, movables in zip(asking, found, strict=True):
        extra = tuple(
            Option(m.volunteer_id, m.km, free_of[m.volunteer_id])
            for m in dict((m.volunteer_id, m) for m in movables if m.volunteer_id in free_of).values()
        )
        widened.append(replace(w, options=w.options + extra))
    widened += [w for w in wanting if w not in asking]
    for need_id, m in held.items():
        options = [Option(m.volunteer_id, m.offer_km, free_of[m.volunteer_id])]
        options += [Option(vid, km + saving, free) for vid, km, free in alternatives[need_id]]
        widened.append(Wanting(need_id, 1, tuple(options)))
    return widened, held


def move_offers(deps: Deps, movable: dict[str, Movable], plan: dict[str, list[str]]) -> list[str]:
    """Withdraw the pending offers the joint plan moves (each need given someone else) and tell their
    volunteers; answers the needs whose offer was moved, to be offered to their new volunteer.

    An offer answered or ended meanwhile stays as it is (its release is one atomic step that
    refuses an offer no longer pending); the need planned to take its volunteer then searches as usual.
    """
    moved = []
    for need_id, m in movable.items():
        if plan.get(need_id, [m.volunteer_id]) == [m.volunteer_id]:
            continue
        try:
            release_offer(
                deps=deps,
                offer_id=m.offer_id,
                status=OfferStatus.WITHDRAWN,
                actor="system",
                reason=MOVED_REASON,
                rematch=False,
            )
        except Refused:
            continue
        deps.store.stats.incr("offers_moved")
        announce(deps, Topic.OFFER_MOVED, need_id, volunteer_id=m.volunteer_id)
        moved.append(need_id)
    return moved


def wait_for_company(deps: Deps) -> None:
    """Let an ordinary need that has just arrived wait out the batch window for others arriving with it.

    An urgent need goes at once, also one arriving during the wait (it is looked for every
    WINDOW_STEP), and so does a full batch.
    """
    window = deps.settings.batch_window_ms / 1000
    while window > 0:
        head = deps.store.backlog.first_waiting()
        if head is None:
            return
        urgency, arrived = urgency_and_arrival(head[1])
        if urgency == URGENCY[jobs.URGENT] or deps.store.backlog.waiting_count() >= MATCH_BATCH:
            return
        age = clock.epoch(deps.clock.now()) - arrived
        if age < 0 or window - age < 0.001:  # arrived "later" by another machine's clock, or waited enough
            return
        deps.clock.sleep(min(window - age, WINDOW_STEP))


def drain_matches(*, deps: Deps, on_outcome: Callable[[MatchOutcome], None] | None = None) -> int:
    """Match waiting needs, most urgent first, a small batch at a time; returns how many were taken.

    The drain's flag is cleared as it starts, and re-armed while needs are left, so another
    worker joins in and a need added meanwhile is never left without a drain. After
    DRAIN_SECONDS it hands over to a fresh job. `on_outcome` hears what became of each need.
    """
    deps.store.backlog.disarm(MATCH)
    started = deps.clock.now()
    taken = 0
    while True:
        wait_for_company(deps)
        batch = deps.store.backlog.take_waiting(MATCH_BATCH)
        if not batch:
            break
        left = deps.store.backlog.waiting_count()
        if left and deps.store.backlog.arm(MATCH):
            enqueue_drain(deps, MATCH)  # more waiting: let a free worker join in
        # a full batch still waiting behind this one: the backlog comes first, moving offers waits
        outcomes = match_together(deps=deps, need_ids=batch, moves=left < MATCH_BATCH)
        if on_outcome is not None:
            for outcome in outcomes:
                on_outcome(outcome)
        taken += len(batch)
        if (deps.clock.now() - started).total_seconds() >= DRAIN_SECONDS:
            break
    if deps.store.backlog.waiting_count() and deps.store.backlog.arm(MATCH):
        enqueue_drain(deps, MATCH)
    return taken


def escalate(*, deps: Deps, need: Need, reason: str, unless_staffed: bool = False) -> bool:
    """Hand the need to people: it climbs its grid's escalation ladder (the on-call captain, then the
    dispatchers, ...: service.captains); nothing happens if it is already escalated.

    With unless_staffed, Redis refuses the change when the need has meanwhile got all the
    offers it asked for (another worker matched it).
    """
    if need.status is NeedStatus.ESCALATED:
        return False
    try:
        change_status(
            unless_staffed=unless_staffed,
            deps=deps,
            need_id=need.id,
            action=Action.ESCALATE,
            actor="system",
            event_type=EventType.ESCALATED,
            detail={"reason": reason},
            fields={"status_reason": reason},
        )
    except InvalidTransition:
        return False
    deps.store.stats.incr("escalations")
    captains.start_ladder(deps=deps, need_id=need.id)
    return True


def rematch_need(*, deps: Deps, need_id: str, principal: Principal) -> Need:
    """Search again. Before assignment: pending offers are withdrawn and everyone may be offered again.
    Once assigned: the assigned volunteers are released and the next nearest are offered instead."""
    need = load_need(deps=deps, need_id=need_id)
    access.require_grid(principal, need.grid)
    lifecycle.check(Action.REMATCH, need.status)
    replacing_team = need.status is NeedStatus.ASSIGNED
    if not replacing_team:
        withdraw_pending(deps=deps, need_id=need_id, actor=principal.actor, reason="dispatcher rematch")
    need = change_status(
        deps=deps,
        need_id=need_id,
        action=Action.REMATCH,
        actor=principal.actor,
        event_type=EventType.REMATCH,
        detail={"reason": "dispatcher rematch"},
        release_offers=replacing_team,
        clear_tried=not replacing_team,
        fields={"committed_deadline": ""} if replacing_team else None,
    )
    wait_for_match(deps, need)
    return need


def auto_close(*, deps: Deps, need_id: str) -> bool:
    """Close a done need nobody rated once the quiet period has passed."""
    need = deps.store.needs.get(need_id)
    if need is None or need.status is not NeedStatus.DONE:
        return False
    done_at = deps.store.needs.field(need_id, "done_at")
    quiet = timedelta(seconds=deps.settings.auto_close_seconds)
    if done_at and clock.parse(done_at) + quiet > deps.clock.now() + timedelta(seconds=1):
        return False
    try:
        change_status(
            deps=deps,
            need_id=need_id,
            action=Action.CLOSE,
            actor="system",
            event_type=EventType.CLOSED,
            detail={"reason": "no feedback within the quiet period"},
        )
    except InvalidTransition:
        return False
    return True


def rematch_escalated_near(*, deps: Deps, volunteer_id: str) -> list[str]:
    """A volunteer became available: re-run matching for escalated needs they could take."""
    volunteer = deps.store.volunteers.get(volunteer_id)
    if volunteer is None or not volunteer.on_duty or volunteer.load >= volunteer.capacity:
        return []
    ids = deps.store.needs.ids_near(
        lat=volunteer.location.lat,
        lon=volunteer.location.lon,
        radius_km=deps.settings.max_radius_km,
        escalated_only=True,
    )
    queued = []
    for need in deps.store.needs.get_many(ids):
        if need is None or need.status is not NeedStatus.ESCALATED:
            continue
        if not any(set(r.skills) <= set(volunteer.skills) and r.active < r.count for r in need.roles):
            continue  # no open place of a role they fit
        if distance_km(need.location, volunteer.location) > max_radius_km(deps, need):
            continue
        wait_for_match(deps, need)
        queued.append(need.id)
    return queued


def check_deadlines(*, deps: Deps) -> list[str]:
    """Escalate needs whose deadline is at risk; report needs past their committed deadline once."""
    moment = deps.clock.now()
    ratio = deps.settings.deadline_risk_ratio
    touched = []
    waiting = [
        *deps.store.needs.ids_with_status(NeedStatus.QUEUED),
        *deps.store.needs.ids_with_status(NeedStatus.MATCHING),
        *deps.store.needs.ids_with_status(NeedStatus.OFFERED),
    ]
    for need in deps.store.needs.get_many(waiting):
        if need is None:
            continue
        created, deadline = clock.parse(need.created_at), clock.parse(need.deadline)
        if moment >= created + (deadline - created) * ratio:
            if escalate(deps=deps, need=need, reason="deadline at risk: still not assigned"):
                touched.append(need.id)
    for need in deps.store.needs.get_many(deps.store.needs.overdue_ids(now_epoch=clock.epoch(moment))):
        if need is None or need.status not in lifecycle.IN_PROGRESS:
            continue
        if deps.store.stats.set_once(f"overdue:{need.id}:{need.committed_deadline}", "1", ttl_seconds=30 * 86400):
            deps.store.needs.add_event(
                need.id,
                Event(
                    at=clock.iso(moment),
                    type=EventType.OVERDUE,
                    actor="system",
                    detail={"committed_deadline": need.committed_deadline},
                ),
            )
            escalate(deps=deps, need=need, reason="past the committed completion deadline")
            announce(deps, Topic.OVERDUE, need.id)
            touched.append(need.id)
    return touched
