"""Races against the real redis-server: several OS processes matching, accepting and declining at once.

Each child process builds its own Deps from the Redis URL, with a recording job queue so nothing is
enqueued, waits at a barrier so they all start together, and reports what it did through a queue.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import random
import traceback
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from service import captains, clock, dispatch, households, incidents, needs, offers, reports, visits, volunteers
from service.bootstrap import bootstrap
from service.cli import create_token
from service.clock import Clock, ManualClock
from service.config import Settings
from service.deps import Deps
from service.exceptions import Conflict, Forbidden, InvalidTransition
from service.lifecycle import Action
from service.models import (
    OPEN_VISITS,
    EventType,
    NeedKind,
    NeedStatus,
    Offer,
    Principal,
    Role,
    VisitOutcome,
    VisitStatus,
)

CTX = multiprocessing.get_context("fork")
HERE = (46.34, 132.25)
KM_PER_DEGREE_LAT = 111.19
LIVE = ("pending", "accepted")


class RecordingJobs:
    """A JobQueue that only remembers what it was asked to run."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str], str, datetime | None]] = []

    def enqueue(self, func: str, *, queue: str, at: datetime | None = None, **kwargs: str) -> None:
        self.calls.append((func, kwargs, queue, at))


def child_deps(redis_url: str, clock: Clock | None = None) -> Deps:
    return bootstrap(Settings.from_env({}, redis_url=redis_url), jobs=RecordingJobs(), clock=clock)


DISPATCHER = Principal(role=Role.DISPATCHER, token_id="tok_race")


def as_volunteer(volunteer_id: str) -> Principal:
    return Principal(role=Role.VOLUNTEER, token_id=f"tok_{volunteer_id}", volunteer_id=volunteer_id)


# ---- running children --------------------------------------------------------------------------


def _child(
    redis_url: str, barrier: Any, results: Any, index: int, task: Callable[[Deps, int], Any], clock: Clock | None
) -> None:
    try:
        deps = child_deps(redis_url, clock)
        barrier.wait(timeout=30)
        results.put((index, "ok", task(deps, index)))
    except BaseException:  # report, so the parent fails with the reason
        results.put((index, "error", traceback.format_exc()))


def run_in_processes(
    redis_url: str, count: int, task: Callable[[Deps, int], Any], clocks: list[Clock] | None = None
) -> list[Any]:
    """Run task(deps, index) in `count` forked processes started together; their results by index.

    Each process tells the time by its own clock from `clocks` (default: the system's).
    """
    barrier = CTX.Barrier(count)
    results = CTX.Queue()
    processes = [
        CTX.Process(target=_child, args=(redis_url, barrier, results, i, task, clocks[i] if clocks else None))
        for i in range(count)
    ]
    for p in processes:
        p.start()
    collected = {}
    try:
        for _ in processes:
            index, kind, value = results.get(timeout=120)
            assert kind == "ok", f"process {index} failed: {value}"
            collected[index] = value
    finally:
        for p in processes:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert all(p.exitcode == 0 for p in processes)
    return [collected[i] for i in range(count)]


# ---- building the world ------------------------------------------------------------------------


@pytest.fixture
def setup_deps(settings: Settings, connection: redis.Redis) -> Deps:
    """Deps on the flushed test Redis whose jobs are only recorded."""
    return bootstrap(settings, connection=connection, jobs=RecordingJobs())


def at(km_north: float, km_east: float = 0.0) -> dict[str, float]:
    return {"lat": HERE[0] + km_north / KM_PER_DEGREE_LAT, "lon": HERE[1] + km_east / 77.0}


def add_volunteer(deps: Deps, n: int, *, capacity: int, location: dict[str, float], **extra: Any) -> str:
    body = {
        "name": f"Volunteer {n}",
        "phone": f"+86138{n:08d}",
        "skills": ["general", "driving"],
        "location": location,
        "capacity": capacity,
        "on_duty": True,
        "channels": [],
        "locale": "zh",
        **extra,
    }
    return volunteers.register_volunteer(deps=deps, volunteer_in=body).id


def add_need(deps: Deps, *, location: dict[str, float], kind: str = "errand_shopping", **extra: Any) -> str:
    body = {"kind": kind, "location": location, "priority": "normal", "volunteers_needed": 1, **extra}
    return needs.submit_need(deps=deps, need_in=body, principal=DISPATCHER).id


def offers_of_volunteer(deps: Deps, volunteer_id: str) -> list[Offer]:
    return deps.store.offers.get_many(deps.store.offers.ids_of_volunteer(volunteer_id, limit=10_000))


def offered_once(deps: Deps, volunteer_id: str, need_id: str) -> str:
    """Match the need and return the one offer id, checking it went to this volunteer."""
    outcome = dispatch.match_need(deps=deps, need_id=need_id)
    assert len(outcome.offered) == 1, outcome
    offer = deps.store.offers.get(outcome.offered[0])
    assert offer is not None and offer.volunteer_id == volunteer_id
    return offer.id


def assert_books_balance(deps: Deps, volunteer_ids: list[str], need_ids: list[str]) -> None:
    """Loads match live offers, nobody is above capacity, and every need's counters match its offers."""
    for vid in volunteer_ids:
        v = deps.store.volunteers.get(vid)
        live = [o for o in offers_of_volunteer(deps, vid) if o.status in LIVE]
        assert v.load <= v.capacity, f"{vid} load {v.load} > capacity {v.capacity}"
        assert v.load == len(live), f"{vid} load {v.load} but {len(live)} live offers"
    for nid in need_ids:
        n = deps.store.needs.get(nid)
        offers = deps.store.offers.of_need(nid)
        live = [o for o in offers if o.status in LIVE]
        assert n.active == len(live), f"{nid} active {n.active} but {len(live)} live offers"
        assert n.accepted == sum(o.status == "accepted" for o in offers)
        assert n.accepted <= n.volunteers_needed, f"{nid} has more acceptances than it asked for"
        assert len(live) <= n.volunteers_needed * max(3, *Settings().parallel_offers.values())
        assert len({o.volunteer_id for o in live}) == len(live), f"{nid} offered twice to one volunteer"


# ---- many matchers at once ---------------------------------------------------------------------


def _match_all_needs(need_ids: list[str]) -> Callable[[Deps, int], Any]:
    def task(deps: Deps, index: int) -> list[str]:
        order = list(need_ids)
        random.Random(index).shuffle(order)
        offered: list[str] = []
        for nid in order:
            offered += dispatch.match_need(deps=deps, need_id=nid).offered
        return offered

    return task


def test_six_processes_matching_sixty_needs_never_overbook_a_volunteer(redis_server, setup_deps: Deps) -> None:
    deps = setup_deps
    rng = random.Random(7)
    volunteer_ids = [
        add_volunteer(deps, i, capacity=1 + i % 2, location=at(rng.uniform(-2, 2), rng.uniform(-2, 2)))
        for i in range(10)
    ]
    need_ids = [
        add_need(deps, location=at(rng.uniform(-2, 2), rng.uniform(-2, 2)), volunteers_needed=2 if i % 5 == 0 else 1)
        for i in range(60)
    ]

    made = run_in_processes(redis_server.url, 6, _match_all_needs(need_ids))

    all_offers = [oid for offered in made for oid in offered]
    assert len(all_offers) == len(set(all_offers))
    assert_books_balance(deps, volunteer_ids, need_ids)
    statuses = Counter(deps.store.needs.get(nid).status for nid in need_ids)
    assert set(statuses) <= {"offered", "escalated"}, statuses
    capacity = sum(deps.store.volunteers.get(v).capacity for v in volunteer_ids)
    loads = sum(deps.store.volunteers.get(v).load for v in volunteer_ids)
    assert loads == capacity == len(all_offers), "60 needs for 15 places: every place is taken, once"
    assert deps.redis.zcard(deps.store.keys.available("general")) == 0


# ---- answering the same offer at once ----------------------------------------------------------


@pytest.fixture
def pending_offers(setup_deps: Deps) -> list[tuple[str, str, str]]:
    """Twelve needs, each with one pending offer to its own capacity-1 volunteer: (need, volunteer, offer)."""
    deps = setup_deps
    made = []
    for i in range(12):
        vid = add_volunteer(deps, i, capacity=1, location=at(0.1 * i))
        nid = add_need(deps, location=at(0.1 * i))
        made.append((nid, vid, offered_once(deps, vid, nid)))
    return made


def _answer(kind: str, targets: list[tuple[str, str, str]]) -> Callable[[Deps, int], Any]:
    """Try `kind` (accept, decline or expire) on every offer; the ids of the offers this process won."""

    def attempt(deps: Deps, volunteer_id: str, offer_id: str) -> bool:
        try:
            if kind == "accept":
                offers.accept_offer(deps=deps, offer_id=offer_id, principal=as_volunteer(volunteer_id))
            elif kind == "decline":
                offers.decline_offer(deps=deps, offer_id=offer_id, principal=as_volunteer(volunteer_id), reason="")
            else:
                return offers.expire_offer(deps=deps, offer_id=offer_id)
        except InvalidTransition:
            return False
        return True

    def task(deps: Deps, index: int) -> list[str]:
        order = list(targets)
        random.Random(index).shuffle(order)
        return [oid for _, vid, oid in order if attempt(deps, vid, oid)]

    return task


def latest_expiry(deps: Deps, targets: list[tuple[str, str, str]]) -> datetime:
    """The last accept-by time among the offers."""
    return max(clock.parse(deps.store.offers.get(oid).expires_at) for _, _, oid in targets)


def _exactly_one_winner(results: list[list[str]], offers: list[tuple[str, str, str]]) -> Counter:
    wins = Counter(oid for won in results for oid in won)
    for _, _, oid in offers:
        assert wins[oid] == 1, f"offer {oid} won {wins[oid]} times"
    return wins


def test_accept_racing_decline_on_the_same_offer_has_exactly_one_winner(
    redis_server, setup_deps: Deps, pending_offers: list[tuple[str, str, str]]
) -> None:
    deps = setup_deps
    kinds = ["accept", "decline"] * 3

    results = run_in_processes(redis_server.url, len(kinds), lambda d, i: _answer(kinds[i], pending_offers)(d, i))

    _exactly_one_winner(results, pending_offers)
    accepted_by_winner = {oid for i, won in enumerate(results) if kinds[i] == "accept" for oid in won}
    for nid, vid, oid in pending_offers:
        offer, need, volunteer = deps.store.offers.get(oid), deps.store.needs.get(nid), deps.store.volunteers.get(vid)
        if oid in accepted_by_winner:
            assert (offer.status, need.status, volunteer.load) == ("accepted", "assigned", 1)
        else:
            assert (offer.status, need.status, volunteer.load) == ("declined", "matching", 0)
    assert_books_balance(deps, [v for _, v, _ in pending_offers], [n for n, _, _ in pending_offers])


def test_decline_racing_expiry_on_a_due_offer_has_exactly_one_winner(
    redis_server, setup_deps: Deps, pending_offers: list[tuple[str, str, str]]
) -> None:
    deps = setup_deps
    past_due = ManualClock(latest_expiry(deps, pending_offers) + timedelta(seconds=5))
    kinds = ["expire", "decline", "accept"] * 2

    results = run_in_processes(
        redis_server.url, len(kinds), lambda d, i: _answer(kinds[i], pending_offers)(d, i), [past_due] * len(kinds)
    )

    wins = _exactly_one_winner(results, pending_offers)
    assert not any(results[i] for i, k in enumerate(kinds) if k == "accept"), "a due offer cannot be accepted"
    assert sum(wins.values()) == len(pending_offers)
    for nid, vid, oid in pending_offers:
        assert deps.store.offers.get(oid).status in ("expired", "declined")
        assert deps.store.volunteers.get(vid).load == 0
        assert deps.store.needs.get(nid).status == "matching"


def test_accept_racing_expiry_as_the_offer_falls_due_has_exactly_one_winner(
    redis_server, setup_deps: Deps, pending_offers: list[tuple[str, str, str]]
) -> None:
    deps = setup_deps
    due = latest_expiry(deps, pending_offers)
    # each side judges the deadline by its own clock: accepting just before it, expiring just after
    kinds = ["accept", "expire"] * 3
    clocks: list[Clock] = [ManualClock(due + timedelta(seconds=-1 if k == "accept" else 1)) for k in kinds]

    results = run_in_processes(
        redis_server.url, len(kinds), lambda d, i: _answer(kinds[i], pending_offers)(d, i), clocks
    )

    _exactly_one_winner(results, pending_offers)
    for nid, vid, oid in pending_offers:
        offer, need, load = deps.store.offers.get(oid), deps.store.needs.get(nid), deps.store.volunteers.get(vid).load
        assert (offer.status, need.status, load) in (("accepted", "assigned", 1), ("expired", "matching", 0))


def test_two_offers_accepted_at_once_on_a_need_for_one_assign_it_once(redis_server, setup_deps: Deps) -> None:
    """The matcher never leaves two live offers on a need for one; the accept step must hold even so.

    The state is made by offering a need for two, then lowering volunteers_needed (and its one role's count) to
    one in Redis.
    """
    deps = setup_deps
    rounds = []
    for r in range(8):
        first = add_volunteer(deps, 2 * r, capacity=1, location=at(0.1 * r))
        second = add_volunteer(deps, 2 * r + 1, capacity=1, location=at(0.1 * r + 0.05))
        nid = add_need(deps, location=at(0.1 * r), volunteers_needed=2)
        outcome = dispatch.match_need(deps=deps, need_id=nid)
        assert len(outcome.offered) == 2, outcome
        key = deps.store.keys.need(nid)
        roles = json.loads(deps.redis.hget(key, "roles"))
        roles[0]["count"] = 1
        deps.redis.hset(key, mapping={"volunteers_needed": 1, "roles": json.dumps(roles)})
        by_volunteer = {deps.store.offers.get(o).volunteer_id: o for o in outcome.offered}
        rounds.append((nid, [(first, by_volunteer[first]), (second, by_volunteer[second])]))

    def task(d: Deps, index: int) -> list[str]:
        won = []
        for nid, pair in rounds:
            vid, oid = pair[index]
            try:
                offers.accept_offer(deps=d, offer_id=oid, principal=as_volunteer(vid))
                won.append(nid)
            except InvalidTransition:
                pass
        return won

    results = run_in_processes(redis_server.url, 2, task)

    wins = Counter(nid for won in results for nid in won)
    for nid, pair in rounds:
        assert wins[nid] == 1, f"{nid} accepted {wins[nid]} times"
        need = deps.store.needs.get(nid)
        assert (need.status, need.accepted, need.active) == ("assigned", 1, 1)
        statuses = sorted(deps.store.offers.get(oid).status for _, oid in pair)
        assert statuses == ["accepted", "withdrawn"]
        assert sorted(deps.store.volunteers.get(vid).load for vid, _ in pair) == [0, 1]
        assert [e.type for e in deps.store.needs.events(nid)].count("assigned") == 1


def test_two_volunteers_accepting_a_need_for_two_at_once_both_succeed_and_assign_it_once(
    redis_server, setup_deps: Deps
) -> None:
    deps = setup_deps
    rounds = []
    for r in range(8):
        pair = [add_volunteer(deps, 2 * r + k, capacity=1, location=at(0.1 * r + 0.05 * k)) for k in (0, 1)]
        nid = add_need(deps, location=at(0.1 * r), volunteers_needed=2)
        offered = dispatch.match_need(deps=deps, need_id=nid).offered
        by_volunteer = {deps.store.offers.get(o).volunteer_id: o for o in offered}
        rounds.append((nid, [(vid, by_volunteer[vid]) for vid in pair]))

    def task(d: Deps, index: int) -> int:
        for _, pair in rounds:
            vid, oid = pair[index]
            offers.accept_offer(deps=d, offer_id=oid, principal=as_volunteer(vid))
        return index

    run_in_processes(redis_server.url, 2, task)

    for nid, _ in rounds:
        need = deps.store.needs.get(nid)
        assert (need.status, need.accepted, need.active) == ("assigned", 2, 2)
        assert [e.type for e in deps.store.needs.events(nid)].count("assigned") == 1


# ---- one need matched by many processes at once ------------------------------------------------


def test_six_processes_matching_one_need_at_once_give_it_its_nearest_volunteers_once(
    redis_server, setup_deps: Deps
) -> None:
    """Finding and reserving is one atomic step, so racing matchers neither overbook nor skip the nearest."""
    deps = setup_deps
    volunteer_ids = [add_volunteer(deps, i, capacity=1, location=at(0.5 * (i + 1))) for i in range(12)]
    need = add_need(deps, location=at(0.0), volunteers_needed=3)

    made = run_in_processes(redis_server.url, 6, lambda d, i: dispatch.match_need(deps=d, need_id=need).offered)

    assert sum(len(offered) for offered in made) == 3
    live = [o for o in deps.store.offers.of_need(need) if o.status in LIVE]
    assert {o.volunteer_id for o in live} == set(volunteer_ids[:3])
    assert_books_balance(deps, volunteer_ids, [need])


# ---- parallel offers and pre-emption -----------------------------------------------------------


def _accept_one(targets: list[tuple[str, str]]) -> Callable[[Deps, int], Any]:
    """Process i accepts the i-th offer: True when it won."""

    def task(deps: Deps, index: int) -> bool:
        volunteer_id, offer_id = targets[index]
        try:
            offers.accept_offer(deps=deps, offer_id=offer_id, principal=as_volunteer(volunteer_id))
        except InvalidTransition:
            return False
        return True

    return task


def test_all_of_a_critical_needs_offers_accepted_at_once_give_one_acceptance(redis_server, setup_deps: Deps) -> None:
    deps = setup_deps
    wins = Counter()
    for round_ in range(5):
        volunteer_ids = [add_volunteer(deps, 10 * round_ + i, capacity=1, location=at(0.2 * i)) for i in range(3)]
        nid = add_need(deps, location=at(0), kind="transport", priority="critical")
        made = dispatch.match_need(deps=deps, need_id=nid).offered
        assert len(made) == 3, "offered to three at once"
        targets = [(deps.store.offers.get(oid).volunteer_id, oid) for oid in made]

        results = run_in_processes(redis_server.url, 3, _accept_one(targets))

        wins[sum(results)] += 1
        need = deps.store.needs.get(nid)
        assert (need.status, need.accepted, need.active) == ("assigned", 1, 1)
        assert_books_balance(deps, volunteer_ids, [nid])
    assert wins == Counter({1: 5}), "exactly one winner every time"


def test_all_offers_of_a_critical_need_with_roles_accepted_at_once_fill_each_role_exactly(
    redis_server, setup_deps: Deps
) -> None:
    """One driver and two lifters, each place offered to three at once: nine acceptances at once, by nine
    processes, give each role exactly its count."""
    deps = setup_deps
    filled = Counter()
    for round_ in range(2):
        base, north = 20 * round_, 100.0 * round_  # each round far from the last one's volunteers
        drivers = [add_volunteer(deps, base + i, capacity=1, location=at(north + 0.1 * i)) for i in range(3)]
        lifters = [
            add_volunteer(deps, base + 3 + i, capacity=1, location=at(north + 0.1 * i, 0.05), skills=["heavy_lifting"])
            for i in range(6)
        ]
        nid = add_need(
            deps,
            location=at(north),
            kind="water_delivery",
            priority="critical",
            roles=[{"skills": ["driving"], "count": 1}, {"skills": ["heavy_lifting"], "count": 2}],
        )
        made = dispatch.match_need(deps=deps, need_id=nid).offered
        targets = [(o.volunteer_id, o.id) for o in deps.store.offers.get_many(made)]
        assert len(targets) == 9, "three offers for each of the three places"

        results = run_in_processes(redis_server.url, 9, _accept_one(targets))

        won = [deps.store.offers.get(oid) for (_, oid), ok in zip(targets, results, strict=True) if ok]
        need = deps.store.needs.get(nid)
        assert sorted(o.role for o in won) == [0, 1, 1], "each role exactly its count, never more"
        assert [(r.accepted, r.active) for r in need.roles] == [(1, 1), (2, 2)], "the other offers are withdrawn"
        assert (need.status, need.accepted, need.active) == ("assigned", 3, 3)
        assert {o.volunteer_id for o in won if o.role == 0} <= set(drivers)
        assert {o.volunteer_id for o in won if o.role == 1} <= set(lifters)
        assert_books_balance(deps, drivers + lifters, [nid])
        filled[tuple(sorted(o.role for o in won))] += 1
    assert filled == Counter({(0, 1, 1): 2})


def _match_one(need_ids: list[str]) -> Callable[[Deps, int], Any]:
    def task(deps: Deps, index: int) -> list[str]:
        return dispatch.match_need(deps=deps, need_id=need_ids[index]).offered

    return task


def test_urgent_needs_racing_for_one_ordinary_offer_take_it_once(redis_server, setup_deps: Deps) -> None:
    deps = setup_deps
    volunteer_ids = [add_volunteer(deps, i, capacity=1, location=at(0.5 * i)) for i in range(3)]
    ordinary = [add_need(deps, location=at(0.5 * i)) for i in range(3)]
    for nid in ordinary:
        assert len(dispatch.match_need(deps=deps, need_id=nid).offered) == 1
    urgent = [add_need(deps, location=at(0.3 * i), vulnerability=["elderly_alone"]) for i in range(6)]
    deps.store.backlog.take_waiting(100)  # matched here by hand, not by drains

    made = run_in_processes(redis_server.url, 6, _match_one(urgent))

    taken = [oid for offered in made for oid in offered]
    assert len(taken) == 3, "three volunteers, each taken once"
    assert sorted(deps.store.offers.get(oid).volunteer_id for oid in taken) == sorted(volunteer_ids)
    for nid in ordinary:
        need = deps.store.needs.get(nid)
        assert need.active == 0 and need.status == "matching", "it waits again"
    assert set(deps.store.backlog.waiting_ids()) >= set(ordinary)
    assert_books_balance(deps, volunteer_ids, ordinary + urgent)


# ---- incidents: needs arriving at once on several processes -------------------------------------


def incident_ids(deps: Deps) -> list[str]:
    return deps.store.incidents.ids_page(status=None, before=None, limit=100)


def assert_one_incident_with(deps: Deps, need_ids: list[str]) -> str:
    """Exactly one incident, holding every one of the needs, each once, each told on its timeline once."""
    [incident_id] = incident_ids(deps)
    incident = deps.store.incidents.get(incident_id)
    assert incident is not None
    assert sorted(incident.need_ids) == sorted(need_ids)
    for nid in need_ids:
        need = deps.store.needs.get(nid)
        assert need is not None and need.incident_id == incident_id
        assert [e.type for e in deps.store.needs.events(nid)].count("incident_joined") == 1
    opened = [a for a in deps.store.backlog.peek_outbox(1000) if a["topic"] == "incident_opened"]
    assert [a["incident_id"] for a in opened] == [incident_id]
    assert deps.store.stats.get("incidents_opened:water:automatic") == 1
    return incident_id


def _submit_water(count: int) -> Callable[[Deps, int], Any]:
    def task(deps: Deps, index: int) -> list[str]:
        return [
            add_need(deps, location=at(0.05 * (count * index + k), 0.05 * k), kind="water_delivery")
            for k in range(count)
        ]

    return task


def test_five_needs_arriving_at_once_on_five_processes_open_exactly_one_incident_with_all_of_them(
    redis_server, setup_deps: Deps
) -> None:
    made = run_in_processes(redis_server.url, 5, _submit_water(1))

    assert_one_incident_with(setup_deps, [nid for ids in made for nid in ids])


def test_many_needs_arriving_at_once_on_six_processes_are_each_in_the_one_incident_once(
    redis_server, setup_deps: Deps
) -> None:
    for _ in range(3):
        setup_deps.redis.flushdb()
        made = run_in_processes(redis_server.url, 6, _submit_water(4))

        assert_one_incident_with(setup_deps, [nid for ids in made for nid in ids])


def test_needs_resolving_at_once_on_several_processes_tell_each_milestone_once(redis_server, setup_deps: Deps) -> None:
    deps = setup_deps
    rounds = []
    for r in range(4):
        ids = [add_need(deps, location=at(10 * r + 0.1 * k), kind="electrical_repair") for k in range(4)]
        incident = incidents.declare_incident(
            deps=deps,
            incident_in={"family": "power", "centre": at(10 * r), "radius_km": 1.0},
            principal=DISPATCHER,
        )
        assert sorted(incident.need_ids) == sorted(ids)
        rounds.append((incident.id, ids))

    def cancel_one_in_each(position: int) -> Callable[[Deps, int], Any]:
        def task(d: Deps, index: int) -> int:
            for _, ids in rounds:
                needs.cancel_need(deps=d, need_id=ids[position + index], reason="restored", principal=DISPATCHER)
            return index

        return task

    def milestones() -> Counter:
        return Counter(
            (a["incident_id"], a["reason"])
            for a in deps.store.backlog.peek_outbox(1000)
            if a["topic"] == "incident_milestone"
        )

    run_in_processes(redis_server.url, 2, cancel_one_in_each(0))
    assert milestones() == Counter({(iid, "half"): 1 for iid, _ in rounds})

    run_in_processes(redis_server.url, 2, cancel_one_in_each(2))
    assert milestones() == Counter(
        {**{(iid, "half"): 1 for iid, _ in rounds}, **{(iid, "all"): 1 for iid, _ in rounds}}
    )


# ---- cleaning up after a drill while matching goes on -------------------------------------------


def _clean_or_match(need_ids: list[str]) -> Callable[[Deps, int], Any]:
    def task(deps: Deps, index: int) -> Any:
        if index == 0:
            from service import drills

            return drills.clean_drills(deps=deps).needs_removed
        return _match_all_needs(need_ids)(deps, index)

    return task


def test_cleaning_a_drill_while_four_processes_match_leaves_no_half_record(redis_server, setup_deps: Deps) -> None:
    deps = setup_deps
    rng = random.Random(11)
    real_volunteers = [
        add_volunteer(deps, i, capacity=2, location=at(rng.uniform(-2, 2), rng.uniform(-2, 2))) for i in range(6)
    ]
    drill_volunteers = [
        add_volunteer(deps, 100 + i, capacity=2, location=at(rng.uniform(-2, 2), rng.uniform(-2, 2)), drill=True)
        for i in range(4)
    ]
    drill_needs = [add_need(deps, location=at(rng.uniform(-2, 2), rng.uniform(-2, 2)), drill=True) for _ in range(20)]
    real_needs = [add_need(deps, location=at(rng.uniform(-2, 2), rng.uniform(-2, 2))) for _ in range(20)]
    mixed = drill_needs + real_needs
    random.Random(3).shuffle(mixed)

    removed, *_ = run_in_processes(redis_server.url, 5, _clean_or_match(mixed))

    assert removed == 20
    assert all(deps.store.needs.get(n) is None for n in drill_needs)
    assert all(deps.store.volunteers.get(v) is None for v in drill_volunteers)
    assert deps.store.drills.need_ids() == [] and deps.store.drills.volunteer_ids() == []
    assert_books_balance(deps, real_volunteers, real_needs)
    for nid in real_needs:
        live = [o for o in deps.store.offers.of_need(nid) if o.status in LIVE]
        assert all(o.volunteer_id in real_volunteers for o in live), f"{nid} holds a live offer of a removed volunteer"
    leftovers = [
        key
        for key in deps.redis.scan_iter(match=deps.store.keys.prefix + "*", count=1000)
        if any(n in key.decode() for n in drill_needs + drill_volunteers)
    ]
    assert leftovers == []
    for skill in ("general", "driving"):
        members = {m.decode() for m in deps.redis.zrange(deps.store.keys.available(skill), 0, -1)}
        assert not members & set(drill_volunteers)


# ---- the escalation ladder: started once, each tier told once ---------------------------------------


def test_six_processes_starting_and_climbing_one_ladder_tell_each_tier_once(redis_server, setup_deps: Deps) -> None:
    deps = setup_deps
    start = datetime.now(UTC)
    captain = add_volunteer(deps, 90, capacity=1, location=at(0), channels=["json://127.0.0.1:9/captain"])
    create_token(deps.store, Role.CAPTAIN, captain, ("grid-2",))
    window = {"from": (start - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"), "volunteer_id": captain}
    window["to"] = (start + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    captains.put_rota(deps=deps, grid="grid-2", rota_in={"overrides": [window]}, principal=DISPATCHER)
    need_id = add_need(deps, location=at(50), grid="grid-2")
    deps.store.backlog.take_waiting(10)
    needs.change_status(
        deps=deps,
        need_id=need_id,
        action=Action.ESCALATE,
        actor="system",
        event_type=EventType.ESCALATED,
        detail={"reason": "a test"},
    )  # escalated, its ladder not started (as after a crash)

    def ladder_steps() -> list[tuple[str, str]]:
        return [
            (e.detail["tier"], e.detail["outcome"])
            for e in deps.store.needs.events(need_id)
            if e.type == "escalation_step"
        ]

    started = run_in_processes(
        redis_server.url,
        6,
        lambda d, i: captains.start_ladder(deps=d, need_id=need_id) is not None,
        clocks=[ManualClock(start) for _ in range(6)],
    )
    later = start + timedelta(seconds=601)
    climbed = run_in_processes(
        redis_server.url,
        6,
        lambda d, i: captains.advance_ladder(deps=d, need_id=need_id),
        clocks=[ManualClock(later) for _ in range(6)],
    )

    assert sum(started) == 1
    assert sorted(climbed) == ["not_due"] * 5 + ["notified"]
    assert ladder_steps() == [("captain", "notified"), ("dispatchers", "notified")]
    told = [a["topic"] for a in deps.store.backlog.peek_outbox(100) if a["topic"].startswith("escalated")]
    assert told == ["escalated_captain", "escalated"]


# ---- households and their visits -----------------------------------------------------------------


def add_household(deps: Deps, n: int, *, level: str = "green") -> str:
    body = {
        "address": f"Station 2, house {n}",
        "location": at(0.1 * n),
        "grid": "grid-2",
        "contact": {"name": f"Resident {n}", "phone": f"+86139{n:08d}"},
        "attention_level": level,
    }
    return households.create_household(deps=deps, household_in=body, principal=DISPATCHER).id


def assert_one_open_visit(deps: Deps, household_id: str) -> None:
    """The household has exactly one open visit, at its level, and it is the one indexed as open or planned."""
    household = deps.store.households.get(household_id)
    found = [v for v in deps.store.visits.get_many(deps.store.visits.of_household(household_id)) if v is not None]
    open_ones = [v for v in found if v.status in OPEN_VISITS]
    assert [v.id for v in open_ones] == [household.open_visit], [(v.id, v.status) for v in found]
    assert open_ones[0].attention_level is household.attention_level or open_ones[0].status is VisitStatus.DUE
    planned = set(deps.redis.zrange(deps.store.keys.visits_planned(), 0, -1, withscores=False))
    mine = {p.decode() for p in planned} & {v.id for v in found}
    assert mine == ({household.open_visit} if open_ones[0].status is VisitStatus.PLANNED else set())


def _change_levels(household_id: str) -> Callable[[Deps, int], Any]:
    def task(deps: Deps, index: int) -> list[str]:
        levels = ["red", "orange", "yellow", "green"]
        random.Random(index).shuffle(levels)
        for level in levels * 3:
            households.update_household(
                deps=deps, household_id=household_id, changes={"attention_level": level}, principal=DISPATCHER
            )
        return levels

    return task


def test_six_processes_changing_a_households_level_at_once_leave_one_open_visit(redis_server, setup_deps: Deps) -> None:
    deps = setup_deps
    household_id = add_household(deps, 1)

    run_in_processes(redis_server.url, 6, _change_levels(household_id))

    assert_one_open_visit(deps, household_id)
    found = deps.store.visits.get_many(deps.store.visits.of_household(household_id))
    statuses = Counter(v.status for v in found if v is not None)
    assert statuses[VisitStatus.PLANNED] == 1
    assert statuses[VisitStatus.PLANNED] + statuses[VisitStatus.CANCELLED] == len(found), statuses
    assert deps.store.stats.get("visits_planned") - deps.store.stats.get("visits_cancelled") == 1


def _sweep_at(moment: datetime) -> Callable[[Deps, int], Any]:
    def task(deps: Deps, index: int) -> dict[str, int]:
        return visits.sweep_visits(deps=deps)

    return task


def test_six_sweepers_at_once_make_each_visit_due_once_with_one_need(redis_server, setup_deps: Deps) -> None:
    deps = setup_deps
    household_ids = [add_household(deps, n, level="red") for n in range(20)]
    later = datetime.now(UTC) + timedelta(days=7)  # every red visit due, none past its period

    reports = run_in_processes(redis_server.url, 6, _sweep_at(later), clocks=[ManualClock(later) for _ in range(6)])

    assert sum(r["visits_due"] for r in reports) == 20
    assert sum(r["visit_needs_written"] for r in reports) == 0, "each need written by the sweep that made it due"
    need_ids = []
    for household_id in household_ids:
        visit = deps.store.visits.get(deps.store.households.get(household_id).open_visit)
        assert visit.status is VisitStatus.DUE
        need_ids.append(visit.need_id)
        assert [e.type for e in deps.store.needs.events(visit.need_id)] == [EventType.CREATED], "written once"
    assert sorted(deps.store.backlog.waiting_ids()) == sorted(need_ids)
    assert deps.store.visits.owed() == []


def _record_outcome(visit_id: str) -> Callable[[Deps, int], Any]:
    def task(deps: Deps, index: int) -> str:
        try:
            visits.record_outcome(
                deps=deps,
                visit_id=visit_id,
                outcome=VisitOutcome.NEEDS_HELP if index % 2 else VisitOutcome.ALL_WELL,
                kind=NeedKind.COAL_HAULING,
                note=None,
                principal=DISPATCHER,
            )
        except Conflict:
            return "refused"
        return "recorded"

    return task


def test_six_outcomes_recorded_at_once_for_one_visit_close_it_once_and_plan_one_next(
    redis_server, setup_deps: Deps
) -> None:
    deps = setup_deps
    household_id = add_household(deps, 1, level="red")
    first = deps.store.households.get(household_id).open_visit
    moment = clock.parse(deps.store.visits.get(first).due_at)
    visits.sweep_visits(deps=dataclasses.replace(deps, clock=ManualClock(moment)))

    answers = run_in_processes(
        redis_server.url, 6, _record_outcome(first), clocks=[ManualClock(moment) for _ in range(6)]
    )

    assert sorted(answers) == ["recorded"] + ["refused"] * 5
    assert deps.store.visits.get(first).status is VisitStatus.DONE
    assert_one_open_visit(deps, household_id)
    assert deps.store.stats.get("visits_planned") == 2
    help_needs = [n for n in deps.store.needs.get_many(deps.store.needs.ids_with_status(NeedStatus.QUEUED)) if n]
    assert len([n for n in help_needs if n.kind is NeedKind.COAL_HAULING]) <= 1


# ---- reports: each need counted once however many finish or rate it at once --------------------------


def test_two_processes_finishing_and_rating_the_same_needs_count_each_exactly_once(
    redis_server, setup_deps: Deps
) -> None:
    deps = setup_deps
    served = []
    for n in range(12):
        vid = add_volunteer(deps, n, capacity=1, location=at(0.2 * n))
        nid = add_need(deps, location=at(0.2 * n), grid="g1")
        offers.accept_offer(deps=deps, offer_id=offered_once(deps, vid, nid), principal=as_volunteer(vid))
        served.append((nid, vid))

    def task(d: Deps, index: int) -> list[str]:
        won = []
        for nid, vid in served if index == 0 else reversed(served):
            try:
                needs.report_progress(
                    deps=d, need_id=nid, status=NeedStatus.DONE, note=None, principal=as_volunteer(vid)
                )
                won.append(f"done {nid}")
            except (InvalidTransition, Forbidden):
                pass
            try:
                needs.close_need(deps=d, need_id=nid, actor="requester", rating=4 + index, comment=None)
                won.append(f"closed {nid}")
            except InvalidTransition:
                pass
        return won

    won = Counter(step for steps in run_in_processes(redis_server.url, 2, task) for step in steps)

    assert set(won.values()) == {1}
    day = clock.local_date(clock.SystemClock().now(), "UTC")
    report = reports.summary(deps=deps, principal=DISPATCHER, date_from=day, date_to=day)
    ratings = [deps.store.needs.get(nid).rating for nid, _ in served]
    assert all(deps.store.needs.get(nid).status == "closed" for nid, _ in served)
    totals = report.totals
    assert (totals["received"], totals["resolved"], totals["rated"], totals["tasks"]) == (12, 12, 12, 12)
    assert totals["mean_rating"] == round(sum(ratings) / 12, 2)
    assert totals["seconds_to_done"]["count"] == 12
