"""Captains on call and the escalation ladder.

Each grid has a rota of its captains (weekly shifts and dated overrides, service.rota). An escalated need
climbs its grid's ladder (service.ladder): first the on-call captain, then, when nobody acknowledges
within the tier's time, the dispatchers, then any tier above. Acknowledging (a captain of the grid or a
dispatcher, by the API or by SMS `ACK <code>`) stops the climb; it changes nothing else about the need.

The ladder lives in Redis (a hash per need and a sorted set of next-step times); each start, step and
acknowledgement is one atomic script, so steps run by the sweep, by the step's own timed job, or by two
of either at once tell each tier once, and a crash loses none.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from service import access, clock, jobs, ladder, rota
from service.backlog import NOTIFY, enqueue_drain
from service.deps import Deps
from service.exceptions import Conflict, InvalidInput, NotFound
from service.ids import new_id
from service.models import GRID_NAME, GRID_NAME_RULE, NeedStatus, Principal, Priority, Role, Rota, TierKind
from service.needs import load_need
from service.store import Refusal, Refused
from service.store.captains import Acknowledgement, LadderStep, TierTarget
from service.store.offers import Escalation

CODE_TTL = 7 * 24 * 3600
"""How long an escalation's ACK code is answered."""

STEP_MARGIN = 0.25
"""A step's timed job runs this long after the step falls due."""


def zone(deps: Deps) -> ZoneInfo:
    return ZoneInfo(deps.settings.timezone)


# ---- the rota -----------------------------------------------------------------------------------------


def put_rota(*, deps: Deps, grid: str, rota_in: dict[str, Any], principal: Principal) -> Rota:
    """Replace the grid's rota; 422 naming each field that breaks a rule (an overlap, a volunteer who is not a
    captain of the grid)."""
    access.require_grid(principal, grid)
    if not GRID_NAME.fullmatch(grid):
        raise InvalidInput(f"invalid grid {grid!r}", errors={"path": {"grid": [GRID_NAME_RULE]}})
    problems = rota.check_rota(rota_in, zone(deps))
    for part in ("shifts", "overrides"):
        for i, item in enumerate(rota_in.get(part, [])):
            volunteer_id = item["volunteer_id"]
            if deps.store.volunteers.get(volunteer_id) is None:
                problems[f"{part}.{i}.volunteer_id"] = ["No volunteer with this id."]
            elif grid not in deps.store.captains.grids_of(volunteer_id):
                problems[f"{part}.{i}.volunteer_id"] = [f"Not a captain of grid {grid} (no captain token for it)."]
    if problems:
        raise InvalidInput(f"invalid input: {', '.join(sorted(problems))}", errors={"json": nested(problems)})
    built = rota.build_rota(grid, rota_in)
    built.updated_at = clock.iso(deps.clock.now())
    built.updated_by = principal.actor
    deps.store.captains.save_rota(built)
    return built


def nested(problems: dict[str, list[str]]) -> dict[str, Any]:
    """{'shifts.1.start': [...]} as {'shifts': {'1': {'start': [...]}}}, the shape of schema errors."""
    tree: dict[str, Any] = {}
    for path, messages in problems.items():
        node = tree
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = messages
    return tree


def get_rota(*, deps: Deps, grid: str, principal: Principal) -> Rota:
    """The grid's rota (empty when none was set)."""
    if principal.role is not Role.OPS:
        access.require_grid(principal, grid)
    return deps.store.captains.rota(grid) or Rota(grid=grid)


def on_call(*, deps: Deps, grid: str, at: datetime | None = None) -> rota.OnCall:
    """Who of the grid's captains is on call now (or at `at`), and until when."""
    return rota.on_call(deps.store.captains.rota(grid), at or deps.clock.now(), zone(deps))


def grid_known(*, deps: Deps, grid: str) -> bool:
    """Whether anything names the grid: a rota, a captain token, a household of the care register, or a ladder of
    its own (AIDLINE_ESCALATION_LADDER)."""
    return (
        deps.store.captains.rota(grid) is not None
        or deps.store.captains.has_captains(grid)
        or deps.store.households.any_in_grid(grid)
        or (grid != "default" and grid in ladder.ladders(deps.settings))
    )


def read_on_call(*, deps: Deps, grid: str, principal: Principal) -> rota.OnCall:
    """Who is on call for the grid now; NotFound for a grid nothing names."""
    if principal.role not in (Role.OPS, Role.INTAKE):
        access.require_grid(principal, grid)
    if grid not in principal.grids and not grid_known(deps=deps, grid=grid):
        raise NotFound(
            f"grid {grid} not found", errors={"grid": ["No rota, captain, household or ladder of its own names it."]}
        )
    return on_call(deps=deps, grid=grid)


# ---- the ladder ---------------------------------------------------------------------------------------


def targets(deps: Deps, grid: str | None, priority: Priority | None) -> list[TierTarget]:
    """The need's ladder as it stands now: the on-call captain looked up, tiers nobody can hear passed over."""
    out = []
    for tier in ladder.ladder_for(deps.settings, grid):
        seconds = ladder.window(tier, priority)
        if tier.kind is TierKind.CAPTAIN:
            now = on_call(deps=deps, grid=grid).volunteer_id if grid else None
            captain = deps.store.volunteers.get(now) if now else None
            if captain is None:
                skip = "no grid" if not grid else "nobody on call"
                out.append(TierTarget(tier.name, tier.kind.value, seconds, skip=skip))
            elif not captain.channels:
                out.append(TierTarget(tier.name, tier.kind.value, seconds, captain.id, "the captain has no channels"))
            else:
                out.append(TierTarget(tier.name, tier.kind.value, seconds, captain.id))
        elif tier.kind is TierKind.DISPATCHERS and not dispatcher_channels(deps, grid):
            out.append(TierTarget(tier.name, tier.kind.value, seconds, note=BOARD_ONLY))
        else:
            out.append(TierTarget(tier.name, tier.kind.value, seconds))
    return out


BOARD_ONLY = "no dispatcher channels are set: the dispatchers see it on the console's board only"


def dispatcher_channels(deps: Deps, grid: str | None) -> tuple[str, ...]:
    """Where dispatchers are told: the grid's channels (AIDLINE_GRID_CHANNELS), else the district's
    (AIDLINE_DISPATCHER_CHANNELS)."""
    return deps.settings.grid_channels.get(grid or "", ()) or deps.settings.dispatcher_channels


def start_ladder(*, deps: Deps, need_id: str, known: Escalation | None = None) -> LadderStep | None:
    """Start the ladder of the need's current escalation and tell its first tier; None when it was started
    already (or the need is no longer escalated). Safe to call any number of times.

    `known`: the need as the match step that escalated it answered, so it is not read again (the ladder's
    own step still refuses a need that has moved on since)."""
    if known is None:
        need = deps.store.needs.get(need_id)
        if need is None or need.status is not NeedStatus.ESCALATED:
            return None
        known = Escalation(
            grid=need.grid, priority=need.priority.value, count=deps.store.needs.field(need_id, "escalations") or ""
        )
    grid, priority = known.grid, Priority(known.priority)
    moment = deps.clock.now()
    for _ in range(5):
        try:
            step = deps.store.captains.start_ladder(
                need_id,
                escalation=known.count,
                episode=new_id("esc"),
                code=f"{secrets.randbelow(10**6):06d}",
                code_ttl=CODE_TTL,
                grid=grid or "",
                priority=priority.value,
                tiers=targets(deps, grid, priority),
                now_iso=clock.iso(moment),
                now_epoch=clock.epoch(moment),
            )
        except Refused as refused:
            if refused.reason is Refusal.BUSY:
                continue  # the code is taken by another escalation: draw another
            return None
        follow_up(deps, need_id, step)
        return step
    return None


def follow_up(deps: Deps, need_id: str, step: LadderStep) -> None:
    """Enqueue what a step armed: the notify drain, and the next step's timed job."""
    if step.arm_notify:
        enqueue_drain(deps, NOTIFY)
    if step.due is not None:
        at = datetime.fromtimestamp(step.due, UTC) + timedelta(seconds=STEP_MARGIN)
        deps.jobs.enqueue(jobs.ADVANCE_LADDER, queue=jobs.URGENT, at=at, need_id=need_id)


def advance_ladder(*, deps: Deps, need_id: str) -> str:
    """Take the ladder's next step if it is due: tell the next tier, or end it. Safe to run any number of
    times: a step not yet due, or taken by someone else, changes nothing."""
    need = deps.store.needs.get(need_id)
    grid = need.grid if need is not None else None
    priority = need.priority if need is not None else None
    moment = deps.clock.now()
    try:
        step = deps.store.captains.step_ladder(
            need_id,
            tiers=targets(deps, grid, priority) if need is not None else [],
            now_iso=clock.iso(moment),
            now_epoch=clock.epoch(moment),
        )
    except Refused as refused:
        return refused.reason.value
    follow_up(deps, need_id, step)
    return step.outcome


def advance_due_ladders(*, deps: Deps) -> int:
    """The sweep's part: take every step that is due, and start the ladder of any escalation that has none
    (its start was lost with a crashed process). Returns how many steps were taken."""
    taken = 0
    for need_id in deps.store.captains.due_ladders(now_epoch=clock.epoch(deps.clock.now())):
        if advance_ladder(deps=deps, need_id=need_id) in ("notified", "ended"):
            taken += 1
    for need in deps.store.needs.get_many(deps.store.needs.ids_with_status(NeedStatus.ESCALATED)):
        if need is None:
            continue
        current = deps.store.captains.ladder(need.id)
        escalation = deps.store.needs.field(need.id, "escalations") or ""
        if (current is None or current.get("escalation") != escalation) and start_ladder(deps=deps, need_id=need.id):
            taken += 1
    return taken


def acknowledge(*, deps: Deps, need_id: str, principal: Principal) -> Acknowledgement:
    """A captain of the need's grid or a dispatcher takes the escalation: the ladder stops. Acknowledging
    again answers the first acknowledgement; 409 when nothing waits for one."""
    need = load_need(deps=deps, need_id=need_id)
    access.require_grid(principal, need.grid)
    return ack(deps, need_id, principal.actor)


def ack(deps: Deps, need_id: str, actor: str) -> Acknowledgement:
    try:
        return deps.store.captains.acknowledge(need_id, actor=actor, now_iso=clock.iso(deps.clock.now()))
    except Refused as refused:
        if refused.reason is Refusal.NEED_STATUS:
            raise Conflict(
                f"nothing to acknowledge: the need is {refused.detail}, not escalated",
                errors={"status": [f"current status is {refused.detail}"]},
            ) from None
        raise Conflict("nothing to acknowledge: no escalation of this need is waiting") from None


def acknowledge_by_code(*, deps: Deps, code: str, sender: str) -> Acknowledgement:
    """A captain's SMS reply 'ACK 123456': the sender's phone must be that of the captain told, or of another
    captain of the need's grid."""
    need_id = deps.store.captains.need_for_code(code)
    state = deps.store.captains.ladder(need_id) if need_id else None
    if need_id is None or state is None:
        raise NotFound(f"no escalation with code {code}")
    captain = acknowledging_captain(deps, state, sender)
    if captain is None:
        raise NotFound(f"no escalation with code {code} for this phone")
    return ack(deps, need_id, f"captain:{captain} (sms)")


def acknowledging_captain(deps: Deps, state: dict[str, str], sender: str) -> str | None:
    """The captain whose phone sent the ACK: the one told, else any captain of the grid on its rota."""
    grid = state.get("grid", "")
    told = state.get("captain_id", "")
    grid_rota = deps.store.captains.rota(grid) if grid else None
    candidates = [told] if told else []
    if grid_rota is not None:
        candidates += [s.volunteer_id for s in grid_rota.shifts] + [o.volunteer_id for o in grid_rota.overrides]
    for volunteer_id in dict.fromkeys(candidates):
        volunteer = deps.store.volunteers.get(volunteer_id)
        if volunteer is not None and volunteer.phone == sender and grid in deps.store.captains.grids_of(volunteer_id):
            return volunteer_id
    return None


def ack_code(*, deps: Deps, need_id: str) -> str:
    """The code a captain replies with (ACK <code>) for the need's current escalation, or ''."""
    state = deps.store.captains.ladder(need_id)
    return state.get("code", "") if state else ""
