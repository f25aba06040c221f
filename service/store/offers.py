"""Offers in Redis: reserving a volunteer, accepting, and releasing, each one atomic step."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from service.matching import NEAREST_ONLY, FairLoad
from service.models import Event, Offer, OfferStatus, Priority
from service.store.codec import event_json, offer_from_hash, text
from service.store.errors import Refused
from service.store.keys import Keys
from service.store.scripts import Scripts, lost, outcome


def bucket_label(value: float, buckets: tuple[float, ...]) -> str:
    """The histogram bucket an observation falls in: the first bound that holds it."""
    return next((f"{b:g}" for b in buckets if value <= b), "+Inf")


@dataclass(frozen=True)
class Assignment:
    """A dispatcher's direct assignment of one volunteer to a need, recorded as an accepted offer."""

    need_id: str
    volunteer_id: str
    offer_id: str
    role: int
    """The index of the need's role the volunteer takes."""
    now_iso: str
    now_epoch: float
    distance_km: float
    event: Event
    committed_iso: str
    committed_epoch: float
    since_intake: float
    latency_buckets: tuple[float, ...]
    override: bool = False
    """The dispatcher's choice stands over duty and skills (capacity still holds)."""


@dataclass(frozen=True)
class MatchRequest:
    """One find-and-reserve step for a need: everything the script needs besides what Redis holds."""

    need_id: str
    now_epoch: float
    offer_id: str
    priority_seconds: dict[Priority, int]
    max_offers: int
    first_ring_km: float
    area_km2: float
    max_radius_km: float
    tie_km: float
    buckets: tuple[float, ...]
    parallel: dict[str, int]
    """Offers at once per open place, by priority."""
    parallel_after_expiry: int
    travel_speed_kmh: float
    wait_class: dict[str, int]
    """The backlog's urgency class by priority, for an ordinary need whose offer is pre-empted."""
    fair: FairLoad = NEAREST_ONLY
    """Who is nearly as near as the nearest, among whom fewer recent tasks go first."""
    prefer: tuple[str, ...] = ()
    """Volunteers a joint assignment chose: taken if every one still fits, else the usual search."""
    parallel_reach_km: float = 2.0
    """Offers beyond one per place go only to volunteers at most this much further than the nearest."""
    preempt_margin_km: float = 2.0
    """An urgent need takes a nearer volunteer's pending ordinary offer when the free one is this much further."""
    replan: bool = False
    """Listing only: count the need's places as if its pending offers were not there (to move them)."""
    within_km: float | None = None
    """Listing only: list nobody further than this."""


@dataclass(frozen=True)
class Movable:
    """A pending offer of an ordinary need that could be moved, so its volunteer may take another need."""

    volunteer_id: str
    km: float
    """From the need that could have them."""
    free: int
    """The volunteer's capacity not in use (not counting this offer)."""
    offer_id: str
    need_id: str
    """The ordinary need holding them."""
    offer_km: float
    """How far that need is from them."""


@dataclass(frozen=True)
class Candidates:
    """Who a need could be offered to now, without reserving anyone."""

    places: int
    """Open places (volunteers still to find, not counting parallel offers)."""
    fanout: int
    """Offers it wants per open place (more than 1: offered to several at once)."""
    urgent: bool
    options: list[tuple[str, float, int]]
    """(volunteer id, distance km, free capacity) in the order of choice."""
    arm_match: bool = False
    """Listing woke an escalated urgent need and armed the match drain: enqueue it."""
    roles: int = 1
    """How many roles the need has; a need with several lists no options (it is matched on its own)."""
    favoured: bool = False
    """The need favours volunteers (continuity): it is matched on its own, so they come first."""


@dataclass(frozen=True)
class MatchedOffer:
    offer_id: str
    volunteer_id: str
    distance_km: float
    code: str
    expires_epoch: float
    role: int = 0


@dataclass(frozen=True)
class Escalation:
    """A need as the match step that escalated it left it: what starting its ladder needs."""

    grid: str | None
    priority: str
    count: str
    """The need's escalations so far, naming this one."""


@dataclass(frozen=True)
class MatchResult:
    """The offers one match step made, and how many volunteers the need still misses."""

    offers: list[MatchedOffer]
    missing: int
    arm_notify: bool = False
    """This step armed the notify drain: enqueue it."""
    arm_expiry_at: float | None = None
    """This step armed the expiry timer: schedule the expiry job at this epoch."""
    escalated: str | None = None
    """Why this step escalated the need (nobody, or not enough, within its radius)."""
    arm_match: bool = False
    """This step put a pre-empted need back in the backlog and armed the match drain: enqueue it."""
    escalation: Escalation | None = None
    """When this step escalated the need: what starting its ladder needs."""


class OfferStore:
    """Reads offers; changes them only through the scripts."""

    def __init__(self, client: redis.Redis, keys: Keys, scripts: Scripts) -> None:
        self.r = client
        self.keys = keys
        self.scripts = scripts

    def match(self, request: MatchRequest) -> MatchResult:
        """Find the nearest eligible volunteers for the need and reserve them in one atomic step.

        Raises Refused (no_need, need_status, max_offers) when the need cannot be matched now.
        """
        return self._result(self.scripts.run("match", self._match_arguments(request)))

    def match_many(self, requests: list[MatchRequest]) -> list[MatchResult | Refused]:
        """match() for several needs in one round trip, in order; each its result or its refusal."""
        pipe = self.r.pipeline(transaction=False)
        calls = [self._match_arguments(request) for request in requests]
        for arguments in calls:
            self.scripts.queue("match", arguments, pipeline=pipe, checked=False)
        answers: list[MatchResult | Refused] = []
        for arguments, reply in zip(calls, pipe.execute(raise_on_error=False), strict=True):
            if lost(reply):
                reply = self.scripts.call("match", arguments)
            try:
                answers.append(self._result(outcome(reply)))
            except Refused as refused:
                answers.append(refused)
        return answers

    def candidates(self, requests: list[MatchRequest], *, extra: int) -> list[Candidates | None]:
        """Who each need could be offered to now (its places plus `extra` more), in one round trip.

        None for a need that cannot be matched now (gone, not waiting, or out of offers).
        """
        pipe = self.r.pipeline(transaction=False)
        calls = [{**self._match_arguments(request), "plan_only": True, "extra": extra} for request in requests]
        for arguments in calls:
            self.scripts.queue("match", arguments, pipeline=pipe, checked=False)
        found: list[Candidates | None] = []
        for arguments, reply in zip(calls, pipe.execute(raise_on_error=False), strict=True):
            if lost(reply):
                reply = self.scripts.call("match", arguments)
            try:
                data = json.loads(outcome(reply))
            except Refused:
                found.append(None)
                continue
            found.append(
                Candidates(
                    places=int(data.get("places", 0)),
                    fanout=int(data.get("fanout", 1)),
                    urgent=bool(data.get("urgent")),
                    arm_match=bool(data.get("arm_match")),
                    roles=int(data.get("roles", 1)),
                    favoured=bool(data.get("favoured")),
                    options=[
                        (c["volunteer_id"], float(c["distance_km"]), int(c["free"]))
                        for c in data.get("candidates") or []
                    ],
                )
            )
        return found

    def movable(
        self, wanted: list[tuple[str, float]], *, parallel: dict[str, int], count: int = 8
    ) -> list[list[Movable]]:
        """For each (need id, km): pending offers of ordinary needs held by volunteers within km of the need
        who could serve it, and could be moved (movable.lua); one round trip."""
        pipe = self.r.pipeline(transaction=False)
        calls = [
            {"need_id": need_id, "within_km": within_km, "parallel": parallel, "count": count}
            for need_id, within_km in wanted
        ]
        for arguments in calls:
            self.scripts.queue("movable", arguments, pipeline=pipe, checked=False)
        found: list[list[Movable]] = []
        for arguments, reply in zip(calls, pipe.execute(raise_on_error=False), strict=True):
            if lost(reply):
                reply = self.scripts.call("movable", arguments)
            found.append(
                [
                    Movable(
                        volunteer_id=m["volunteer_id"],
                        km=float(m["km"]),
                        free=int(m["free"]),
                        offer_id=m["offer_id"],
                        need_id=m["need_id"],
                        offer_km=float(m["offer_km"]),
                    )
                    for m in json.loads(outcome(reply))
                ]
            )
        return found

    def _match_arguments(self, r: MatchRequest) -> dict[str, Any]:
        return {
            "need_id": r.need_id,
            "now_epoch": repr(r.now_epoch),
            "offer_id": r.offer_id,
            "priority_seconds": {p.value: seconds for p, seconds in r.priority_seconds.items()},
            "max_offers": r.max_offers,
            "first_ring_km": r.first_ring_km,
            "area_km2": r.area_km2,
            "max_radius_km": r.max_radius_km,
            "tie_km": r.tie_km,
            "buckets": list(r.buckets),
            "parallel": r.parallel,
            "parallel_after_expiry": r.parallel_after_expiry,
            "travel_speed_kmh": r.travel_speed_kmh,
            "wait_class": r.wait_class,
            "fair": {"ratio": r.fair.ratio, "max_km": r.fair.max_km, "pool": r.fair.pool},
            "prefer": list(r.prefer),
            "parallel_reach_km": r.parallel_reach_km,
            "preempt_margin_km": r.preempt_margin_km,
            "replan": r.replan,
            **({"within_km": r.within_km} if r.within_km is not None else {}),
        }

    @staticmethod
    def _result(detail: str) -> MatchResult:
        data = json.loads(detail)
        return MatchResult(
            offers=[
                MatchedOffer(
                    offer_id=o["offer_id"],
                    volunteer_id=o["volunteer_id"],
                    distance_km=float(o["distance_km"]),
                    code=o["code"],
                    expires_epoch=float(o["expires_epoch"]),
                    role=int(o.get("role", 0)),
                )
                for o in data["offers"] or []
            ],
            missing=int(data["missing"]),
            arm_notify=bool(data.get("arm_notify")),
            arm_expiry_at=float(data["arm_expiry"]) if data.get("arm_expiry") else None,
            escalated=data.get("escalated") or None,
            arm_match=bool(data.get("arm_match")),
            escalation=Escalation(grid=e["grid"] or None, priority=e["priority"], count=e["count"])
            if (e := data.get("escalation"))
            else None,
        )

    def assign(self, assignment: Assignment) -> None:
        """Reserve the volunteer for the need as an accepted offer, re-checking both; raises Refused otherwise."""
        a = assignment
        self.scripts.run(
            "assign",
            {
                "need_id": a.need_id,
                "volunteer_id": a.volunteer_id,
                "offer_id": a.offer_id,
                "role": a.role,
                "now_iso": a.now_iso,
                "now_epoch": repr(a.now_epoch),
                "distance_km": repr(round(a.distance_km, 3)),
                "event": event_json(a.event),
                "committed_iso": a.committed_iso,
                "committed_epoch": repr(a.committed_epoch),
                "bucket": bucket_label(a.since_intake, a.latency_buckets),
                "since_intake": repr(a.since_intake),
                "override": a.override,
            },
        )

    def accept(
        self,
        *,
        offer_id: str,
        now_iso: str,
        now_epoch: float,
        committed_iso: str,
        committed_epoch: float,
        event: Event,
        assigned_event: Event,
    ) -> tuple[bool, bool]:
        """Accept a pending offer: (the need became assigned, the notify drain must be enqueued: offers of a role
        now filled were withdrawn).

        Raises Refused otherwise (role_filled: the offer's role has all its volunteers)."""
        detail = self.scripts.run(
            "accept",
            {
                "offer_id": offer_id,
                "now_iso": now_iso,
                "now_epoch": repr(now_epoch),
                "committed_iso": committed_iso,
                "committed_epoch": repr(committed_epoch),
                "event": event_json(event),
                "assigned_event": event_json(assigned_event),
            },
        )
        return detail.startswith("assigned"), detail.endswith("+notify")

    def release(
        self,
        *,
        offer_id: str,
        status: OfferStatus,
        now_iso: str,
        now_epoch: float,
        reason: str,
        event: Event,
        only_if_due: bool = False,
    ) -> None:
        """End a pending offer and free the volunteer's capacity; raises Refused otherwise."""
        self.scripts.run(
            "release",
            {
                "offer_id": offer_id,
                "status": status.value,
                "now_iso": now_iso,
                "now_epoch": repr(now_epoch),
                "reason": reason,
                "event": event_json(event),
                "only_if_due": only_if_due,
            },
        )

    def get(self, offer_id: str) -> Offer | None:
        data = self.r.hgetall(self.keys.offer(offer_id))
        return offer_from_hash(data) if data else None

    def get_many(self, offer_ids: list[str]) -> list[Offer]:
        pipe = self.r.pipeline(transaction=False)
        for oid in offer_ids:
            pipe.hgetall(self.keys.offer(oid))
        return [offer_from_hash(d) for d in pipe.execute() if d]

    def of_need(self, need_id: str) -> list[Offer]:
        return self.get_many([text(x) for x in self.r.zrange(self.keys.need_offers(need_id), 0, -1)])

    def of_needs(self, need_ids: list[str]) -> list[Offer]:
        """Every offer of these needs: two round trips however many needs."""
        pipe = self.r.pipeline(transaction=False)
        for need_id in need_ids:
            pipe.zrange(self.keys.need_offers(need_id), 0, -1)
        return self.get_many([text(x) for ids in pipe.execute() for x in ids])

    def ids_of_volunteer(self, volunteer_id: str, *, limit: int = 100) -> list[str]:
        """The volunteer's offers, newest first."""
        return [text(x) for x in self.r.zrevrange(self.keys.volunteer_offers(volunteer_id), 0, limit - 1)]

    def id_for_code(self, code: str) -> str | None:
        raw = self.r.get(self.keys.offer_code(code))
        return text(raw) if raw else None

    def arm_next_expiry(self, *, unless_armed_since: float = 1e18) -> float | None:
        """Arm the expiry timer for the earliest pending offer; the epoch to schedule it at, or None.

        With `unless_armed_since`, a timer armed for that moment or later is left as it is (None).
        """
        earliest = self.scripts.run("next_expiry", {"unless_armed_since": repr(unless_armed_since)})
        return float(earliest) if earliest else None

    def due_ids(self, *, now_epoch: float, limit: int = 1000) -> list[str]:
        """Pending offers whose accept-by time has passed."""
        return [
            text(x) for x in self.r.zrangebyscore(self.keys.pending_offers(), "-inf", now_epoch, start=0, num=limit)
        ]
