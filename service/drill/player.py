"""Playing a drill: register the drill's volunteers, submit the needs at their times, and play the volunteers.

One thread, one timetable: every step (a need's arrival, a volunteer's answer, a progress report, the
requester's rating) is due at a wall-clock moment, the scenario's time divided by the speed. Between
steps the player polls the need list (newest first, down to the drill's first need), sees which
pending offers went to the drill's volunteers and decides, seeded, what each volunteer does: accept
after a while, decline, or never answer. Offers to volunteers the drill did not create are left to
them. An offer withdrawn or expired before the answer arrives answers 409: the player moves on.
"""

from __future__ import annotations

import heapq
import itertools
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from service.drill.client import ApiError, Client
from service.drill.report import Played
from service.drill.scenarios import NeedPlan, Scenario

FINISHED = frozenset({"done", "closed", "escalated", "deferred", "cancelled"})
"""A drill is over when every need is in one of these (and nothing the player planned is left to do)."""
WORKING = ("assigned", "en_route", "on_site")
NEXT_STEP = {"assigned": "en_route", "en_route": "on_site", "on_site": "done"}
MIN_ACCEPT_SECONDS, MAX_ACCEPT_SECONDS = 10, 86400
OFFER_SWEEP_SECONDS = 30.0
"""How often (wall seconds) the player also reads each drill volunteer's own offers, to decline offers of
needs that are not from the drill (a drill volunteer is not a person who could go)."""


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(order=True)
class _Step:
    due: float
    seq: int
    kind: str = field(compare=False)
    args: tuple[Any, ...] = field(compare=False, default=())


class Player:
    """Plays one scenario against one Aidline."""

    def __init__(
        self,
        client: Client,
        scenario: Scenario,
        *,
        speed: float = 1.0,
        seed: int = 1,
        timeout: float | None = None,
        say: Callable[[str], None] = lambda line: None,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.client = client
        self.scenario = scenario
        self.speed = speed
        self.seed = seed
        self.rng = random.Random(seed * 7919 + 17)
        self.behaviour = scenario.behaviour
        self.timeout = timeout if timeout is not None else scenario.timeout / speed
        self.say = say
        self.poll_seconds = max(0.25, min(2.0, 10.0 / speed))
        self.settle_seconds = max(2.0, 20.0 / speed)
        self.steps: list[_Step] = []
        self.seq = itertools.count()
        self.start = 0.0
        self.catalog: dict[str, dict[str, Any]] = {}
        self.volunteers: dict[str, dict[str, Any]] = {}
        self.need_ids: list[str] = []
        self.tracking: dict[str, str] = {}
        self.status: dict[str, str] = {}
        self.seen_offers: set[str] = set()
        self.held: dict[str, dict[str, float]] = {}
        """Need id -> {drill volunteer id: distance km} for offers the drill's volunteers accepted."""
        self.advancing: set[str] = set()
        self.answers: Counter[str] = Counter()
        self.samples: list[tuple[float, dict[str, int]]] = []
        self.submitted = 0

    # ---- time

    def now(self) -> float:
        return time.monotonic() - self.start

    def later(self, scenario_seconds: float, kind: str, *args: Any) -> None:
        """Plan a step `scenario_seconds` from now (scenario time, divided by the speed)."""
        heapq.heappush(self.steps, _Step(self.now() + scenario_seconds / self.speed, next(self.seq), kind, args))

    def draw(self, span: tuple[float, float]) -> float:
        return self.rng.uniform(*span)

    # ---- the drill

    def run(self) -> Played:
        started = datetime.now(UTC)
        self.start = time.monotonic()
        self.catalog = {k["name"]: k for k in self.client.catalog()["kinds"]}
        for body in self.scenario.volunteers:
            created = self.client.create_volunteer(body)
            self.volunteers[created["id"]] = created
        self.say(f"registered {len(self.volunteers)} drill volunteers")
        self.start = time.monotonic()  # the scenario's clock starts with the first arrival due
        for index, plan in enumerate(self.scenario.needs):
            heapq.heappush(self.steps, _Step(plan.at / self.speed, next(self.seq), "submit", (index,)))
        timed_out = self.play()
        ended = datetime.now(UTC)
        self.say("collecting timelines and notifications")
        return self.collect(started, ended, timed_out)

    def play(self) -> bool:
        """Run the timetable until the drill is over; True when it timed out."""
        next_poll = 0.0
        next_sweep = OFFER_SWEEP_SECONDS
        next_line = 0.0
        quiet_since: float | None = None
        while True:
            now = self.now()
            if now > self.timeout:
                self.say(f"timed out after {now:.0f} s")
                return True
            while self.steps and self.steps[0].due <= now:
                step = heapq.heappop(self.steps)
                self.perform(step)
            if now >= next_poll and self.need_ids:
                self.poll()
                next_poll = self.now() + self.poll_seconds
                if now >= next_line:
                    self.say(self.progress_line())
                    next_line = now + max(5.0, self.poll_seconds)
            if now >= next_sweep:
                self.sweep_offers()
                next_sweep = self.now() + OFFER_SWEEP_SECONDS
            if self.over():
                quiet_since = quiet_since if quiet_since is not None else self.now()
                if self.now() - quiet_since >= self.settle_seconds:
                    self.poll()
                    if self.over():
                        self.say(self.progress_line())
                        return False
            else:
                quiet_since = None
            wake = min([next_poll, next_sweep] + ([self.steps[0].due] if self.steps else []))
            time.sleep(min(max(wake - self.now(), 0.0), self.poll_seconds))

    def over(self) -> bool:
        """Every need submitted and finished, and nothing left that the player planned to do."""
        return (
            self.submitted == len(self.scenario.needs)
            and not self.steps
            and all(self.status.get(n) in FINISHED for n in self.need_ids)
        )

    def progress_line(self) -> str:
        counts = Counter(self.status.get(n, "?") for n in self.need_ids)
        shown = " ".join(f"{s} {c}" for s, c in sorted(counts.items()))
        return (
            f"{self.now():6.1f} s (scenario {self.now() * self.speed / 60:5.1f} min): "
            f"{self.submitted}/{len(self.scenario.needs)} submitted | {shown}"
        )

    # ---- steps

    def perform(self, step: _Step) -> None:
        try:
            getattr(self, f"_{step.kind}")(*step.args)
        except ApiError as error:
            if error.status not in (404, 409):
                raise
            # withdrawn, expired or moved on meanwhile: nothing more to do about it
            if step.kind == "answer":
                self.answers["too_late"] += 1
            elif step.kind == "advance":
                self.advancing.discard(step.args[0])

    def _submit(self, index: int) -> None:
        plan: NeedPlan = self.scenario.needs[index]
        created = self.client.create_need(self.need_body(plan))
        self.need_ids.append(created["id"])
        self.tracking[created["id"]] = created["tracking_code"]
        self.status[created["id"]] = created["status"]
        self.submitted += 1

    def need_body(self, plan: NeedPlan) -> dict[str, Any]:
        """The POST /needs body: the plan's, with the kind's deadline and accept window divided by the speed."""
        body = dict(plan.body)
        kind = self.catalog[body["kind"]]
        priority = body.get("priority", "normal")
        deadline = datetime.now(UTC) + timedelta(seconds=kind["deadlines"][priority] * 60 / self.speed)
        window = round(kind["accept_minutes"][priority] * 60 / self.speed)
        body["deadline"] = iso(deadline)
        body["accept_seconds"] = min(max(window, MIN_ACCEPT_SECONDS), MAX_ACCEPT_SECONDS)
        return body

    def _answer(self, offer_id: str, need_id: str, volunteer_id: str, choice: str, distance_km: float) -> None:
        if choice == "decline":
            self.client.decline(offer_id, "cannot come now")
            self.answers["declined"] += 1
            return
        offer = self.client.accept(offer_id)
        self.answers["accepted"] += 1
        self.held.setdefault(need_id, {})[volunteer_id] = distance_km
        status = (offer.get("need") or {}).get("status")
        if status:
            self.status[need_id] = status
        if need_id not in self.advancing:
            self.advancing.add(need_id)
            self.later(self.draw(self.behaviour.leave_after), "advance", need_id)

    def _advance(self, need_id: str) -> None:
        """The next step of a need the drill's volunteers hold: set off, arrive, finish."""
        status = self.status.get(need_id, "")
        if status in ("queued", "matching", "offered"):
            # waiting for more volunteers to accept: look again a little later
            heapq.heappush(self.steps, _Step(self.now() + self.poll_seconds, next(self.seq), "advance", (need_id,)))
            return
        if status not in NEXT_STEP:
            self.advancing.discard(need_id)
            return
        target = NEXT_STEP[status]
        need = self.client.progress(need_id, target)
        self.status[need_id] = need["status"]
        if target == "en_route":
            km = max(self.held.get(need_id, {}).values(), default=1.0)
            self.later(60 + km / self.behaviour.speed_kmh * 3600, "advance", need_id)
        elif target == "on_site":
            self.later(self.draw(self.behaviour.work), "advance", need_id)
        else:
            self.advancing.discard(need_id)
            if self.rng.random() < self.behaviour.feedback:
                self.later(self.draw(self.behaviour.feedback_after), "feedback", need_id)

    def _feedback(self, need_id: str) -> None:
        rating = self.rng.choice([5, 5, 5, 4, 4, 3])
        self.client.feedback(self.tracking[need_id], rating, "drill")

    def _decline_foreign(self, offer_id: str) -> None:
        self.client.decline(offer_id, "a drill volunteer, not a person who could come")

    # ---- seeing offers

    def poll(self) -> None:
        """Read the needs newest first down to the drill's first one; answer new offers to drill volunteers."""
        ours = set(self.need_ids)
        oldest = min(self.need_ids)
        for item in self.client.needs_newest_first(stop_below=oldest):
            if item["id"] in ours:
                self.status[item["id"]] = item["status"]
            for assignment in item["assignments"]:
                self.notice(item, assignment, ours)
        counts = Counter(self.status.get(n, "?") for n in self.need_ids)
        self.samples.append((round(self.now(), 3), dict(counts)))

    def notice(self, need: dict[str, Any], assignment: dict[str, Any], ours: set[str]) -> None:
        offer_id, volunteer_id = assignment["offer_id"], assignment["volunteer_id"]
        if assignment["status"] != "pending" or volunteer_id not in self.volunteers or offer_id in self.seen_offers:
            return
        self.seen_offers.add(offer_id)
        if need["id"] not in ours:
            heapq.heappush(self.steps, _Step(self.now(), next(self.seq), "decline_foreign", (offer_id,)))
            return
        draw = self.rng.random()
        distance = float(assignment.get("distance_km") or 0.0)
        if draw < self.behaviour.accept:
            self.later(
                self.draw(self.behaviour.answer_after), "answer", offer_id, need["id"], volunteer_id, "accept", distance
            )
        elif draw < self.behaviour.accept + self.behaviour.decline:
            self.later(
                self.draw(self.behaviour.answer_after) / 2,
                "answer",
                offer_id,
                need["id"],
                volunteer_id,
                "decline",
                distance,
            )
        else:
            self.answers["silent"] += 1

    def sweep_offers(self) -> None:
        """Decline pending offers of needs that are not the drill's, which the need list did not show."""
        ours = set(self.need_ids)
        for volunteer_id in self.volunteers:
            for offer in self.client.volunteer_offers(volunteer_id):
                if (
                    offer["status"] == "pending"
                    and offer["need_id"] not in ours
                    and offer["id"] not in self.seen_offers
                ):
                    self.seen_offers.add(offer["id"])
                    heapq.heappush(self.steps, _Step(self.now(), next(self.seq), "decline_foreign", (offer["id"],)))

    # ---- the record

    def collect(self, started: datetime, ended: datetime, timed_out: bool) -> Played:
        needs = [self.client.need(n) for n in self.need_ids]
        events = {n: self.client.events(n) for n in self.need_ids}
        notifications = {n: self.client.notifications(n) for n in self.need_ids}
        volunteers = dict(self.volunteers)
        offered = {
            e["detail"]["volunteer_id"]
            for timeline in events.values()
            for e in timeline
            if e["type"] in ("offered", "assigned_by_dispatcher") and e["detail"].get("volunteer_id")
        }
        for volunteer_id in sorted(offered - volunteers.keys()):
            try:
                volunteers[volunteer_id] = self.client.volunteer(volunteer_id)
            except ApiError as error:
                if error.status != 404:
                    raise
        return Played(
            scenario=self.scenario.name,
            title=self.scenario.title,
            speed=self.speed,
            seed=self.seed,
            started_at=iso(started),
            ended_at=iso(ended),
            wall_seconds=round((ended - started).total_seconds(), 3),
            timed_out=timed_out,
            needs=needs,
            events=events,
            notifications=notifications,
            volunteers=volunteers,
            drill_volunteers=sorted(self.volunteers),
            samples=self.samples,
            answers=dict(self.answers),
            requests=self.client.requests,
            throttled=self.client.throttled,
        )
