"""How near to the drill report's optimal travel can any online dispatch come? A simulation.

The outage drill's needs arrive over two minutes and its volunteers answer after 10-90 s, most
accepting, some declining, some never answering (their offer holds a place until its accept window
ends). The report's optimum (service.drill.report.optimal_travel_km) knows every arrival and every
refusal in advance. This replays the scenario's arrivals and answers (seeded) in scenario time
through simple dispatch policies, each solving every batch window jointly (scipy's
linear_sum_assignment, urgent needs' places first), and prints each policy's travel against that
optimum:

- nearest: what is offered stays offered (the joint batch only);
- moves: as the service moves pending offers (service.dispatch.with_movable_offers): an ordinary
  need whose nearest free volunteer is further than the saving looks at up to 4 nearer volunteers
  holding a pending ordinary offer, at most 6 such offers weighed per batch, each moved only when
  the total travel falls by more than the saving (and the same with urgent needs asking too);
- re-plan: every pending offer, urgent ones too and without limits, is weighed again at every batch
  (with the saving as the price of a move, or free).

Accepted volunteers set off, travel and work as the scenario's volunteers do, and a task done frees
its place. It leaves out what the service adds on top (parallel offers, fair load, pre-emption), so
it measures the policies, not the service. Usage: bench_drill_policies.py [--seeds 1-5].
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from service.catalog import ACCEPT_SECONDS, KINDS
from service.drill import report, scenarios
from service.matching import distance_km
from service.models import NeedKind, Priority

UNREACHABLE = 1e6
WINDOW = 3.0
"""Scenario seconds of the batch window (300 ms at --speed 10)."""
SAVING_KM = 0.5
MOVABLE_NEEDS, MOVABLE_HOLDERS = 6, 4
LEAVE, WORK, SPEED_KMH = (30.0, 120.0), (240.0, 720.0), 30.0
"""The scenario's volunteers: accepting to setting off and on site to done (s), travel speed: done frees a place."""
PLAYS = {"the drill's volunteers": (0.8, 0.1), "everyone accepts": (1.0, 0.0)}
"""(share accepting, share declining; the rest never answer)."""


@dataclass(frozen=True)
class Policy:
    name: str
    moves: str = "none"  # none | service | all
    urgent_ask: bool = True
    saving_km: float = SAVING_KM


POLICIES = [
    Policy("nearest, nothing moved"),
    Policy("moves as the service makes them", moves="service", urgent_ask=False),
    Policy("the same, urgent needs asking for moves too", moves="service"),
    Policy("re-plan every pending offer, a move costs 0.5 km", moves="all"),
    Policy("re-plan every pending offer, moves free", moves="all", saving_km=0.0),
]


@dataclass
class Outcome:
    accepted: dict[int, int] = field(default_factory=dict)
    refused: set[tuple[int, int]] = field(default_factory=set)
    moves: int = 0


class Drill:
    """The outage scenario of one seed as arrays: distances (unreachable where skills lack), places, urgency."""

    def __init__(self, seed: int) -> None:
        scenario = scenarios.build("outage", seed)
        self.arrivals = [plan.at for plan in scenario.needs]
        bodies = [plan.body for plan in scenario.needs]
        self.urgent = [report.is_urgent(body) for body in bodies]
        self.expiry = [float(ACCEPT_SECONDS[Priority(body.get("priority", "normal"))]) for body in bodies]
        self.capacity = [int(v["capacity"]) for v in scenario.volunteers]
        self.distance = np.array(
            [
                [
                    distance_km(report.location(v), report.location(body))
                    if set(body.get("skills") or KINDS[NeedKind(body["kind"])].skills) <= set(v["skills"]) | {"general"}
                    else UNREACHABLE
                    for v in scenario.volunteers
                ]
                for body in bodies
            ]
        )


def solve(
    drill: Drill, rows: list[int], free: list[int], cost: np.ndarray, held: dict[int, int], saving: float
) -> dict[int, int]:
    """Each row's volunteer in the batch's joint assignment: urgent places first, then least travel;
    moving a held offer costs `saving` more."""
    slots = [j for j, places in enumerate(free) for _ in range(max(places, 0))]
    if not rows or not slots:
        return {}
    matrix = cost[np.ix_(rows, slots)].copy()
    for r, need in enumerate(rows):
        if need in held:
            matrix[r, [s for s, j in enumerate(slots) if j != held[need]]] += saving
        if drill.urgent[need]:
            matrix[r] -= 1000.0
    chosen_rows, chosen_cols = linear_sum_assignment(matrix)
    return {
        rows[r]: slots[c]
        for r, c in zip(chosen_rows, chosen_cols, strict=True)
        if cost[rows[r], slots[c]] < UNREACHABLE
    }


def movable(
    drill: Drill,
    rows: list[int],
    free: list[int],
    cost: np.ndarray,
    pending: dict[int, tuple[int, float]],
    policy: Policy,
) -> list[int]:
    """The pending needs weighed for moving in this batch."""
    if policy.moves == "all":
        return list(pending)
    if policy.moves == "none":
        return []
    chosen: list[int] = []
    for need in rows:
        if drill.urgent[need] and not policy.urgent_ask:
            continue
        nearest = min((cost[need, j] for j, places in enumerate(free) if places > 0), default=UNREACHABLE)
        if nearest <= policy.saving_km:
            continue
        reach = nearest - policy.saving_km
        holders = {j for other, (j, _) in pending.items() if not drill.urgent[other] and cost[need, j] < reach}
        for j in sorted(holders, key=lambda j: cost[need, j])[:MOVABLE_HOLDERS]:
            for other, (holder, _) in pending.items():
                if holder == j and not drill.urgent[other] and other not in chosen and len(chosen) < MOVABLE_NEEDS:
                    chosen.append(other)
    return chosen


def play(drill: Drill, policy: Policy, answers: tuple[float, float], seed: int) -> Outcome:
    """Replay the arrivals through the policy; a (need, volunteer) pair answers the same way each time it is offered."""
    rng = random.Random(seed)
    accept, decline = answers
    answered: dict[tuple[int, int], tuple[str, float]] = {}

    def answer(need: int, volunteer: int) -> tuple[str, float]:
        if (need, volunteer) not in answered:
            u = rng.random()
            what = "accept" if u < accept else "decline" if u < accept + decline else "silent"
            answered[(need, volunteer)] = (what, rng.uniform(10, 90))
        return answered[(need, volunteer)]

    out = Outcome()
    free = list(drill.capacity)
    pending: dict[int, tuple[int, float]] = {}  # need -> (volunteer, when it is answered or expires)
    working: list[tuple[float, int]] = []  # (when the task is done, volunteer): a place comes free
    waiting: list[int] = []
    cost = drill.distance.copy()
    arrived = 0
    while arrived < len(drill.arrivals) or pending or (waiting and working):
        batch_at = drill.arrivals[arrived] + WINDOW if arrived < len(drill.arrivals) else float("inf")
        now = min([batch_at, *(at for _, at in pending.values()), *(at for at, _ in working)])
        for at, volunteer in [w for w in working if w[0] <= now]:
            working.remove((at, volunteer))
            free[volunteer] += 1
        for need, (volunteer, at) in list(pending.items()):
            if at <= now:
                del pending[need]
                if answer(need, volunteer)[0] == "accept":
                    out.accepted[need] = volunteer
                    km = float(drill.distance[need, volunteer])
                    done = at + rng.uniform(*LEAVE) + km / SPEED_KMH * 3600 + 60 + rng.uniform(*WORK)
                    working.append((done, volunteer))
                else:
                    out.refused.add((need, volunteer))
                    cost[need, volunteer] = UNREACHABLE
                    free[volunteer] += 1
                    waiting.append(need)
        rows = waiting
        waiting = []
        while arrived < len(drill.arrivals) and drill.arrivals[arrived] + WINDOW <= now:
            rows.append(arrived)
            arrived += 1
        weighed = movable(drill, rows, free, cost, pending, policy)
        for need in weighed:
            free[pending[need][0]] += 1
        held = {need: pending[need][0] for need in weighed}
        plan = solve(drill, rows + weighed, free, cost, held, policy.saving_km)
        kept = [need for need in weighed if plan.get(need) is None]  # nobody else for it: it keeps its offer
        for need in kept + rows + [need for need in weighed if need not in kept]:
            volunteer = held[need] if need in kept else plan.get(need)
            if volunteer is None or free[volunteer] == 0:  # its planned volunteer was kept: its own search
                others = [j for j, places in enumerate(free) if places > 0 and cost[need, j] < UNREACHABLE]
                if not others:
                    waiting.append(need)
                    continue
                volunteer = min(others, key=lambda j: cost[need, j])
            free[volunteer] -= 1
            if held.get(need) == volunteer:
                continue
            if need in held:
                out.moves += 1
                del pending[need]
            what, after = answer(need, volunteer)
            pending[need] = (volunteer, now + (after if what != "silent" else drill.expiry[need]))
    return out


def optimum(drill: Drill, out: Outcome) -> float:
    """The report's optimum: the same tasks, the volunteers who did any, max(capacity, did) each, no refused pair."""
    did = Counter(out.accepted.values())
    slots = [j for j in did for _ in range(max(drill.capacity[j], did[j]))]
    needs = list(out.accepted)
    matrix = np.array([[UNREACHABLE if (i, j) in out.refused else drill.distance[i, j] for j in slots] for i in needs])
    rows, cols = linear_sum_assignment(matrix)
    return float(sum(matrix[r, c] for r, c in zip(rows, cols, strict=True) if matrix[r, c] < UNREACHABLE))


def check(drill: Drill, out: Outcome) -> None:
    """Every task within the volunteer's skills (places are checked as they are taken)."""
    assert all(drill.distance[i, j] < UNREACHABLE for i, j in out.accepted.items()), "a task without the skills"


def run(seeds: list[int]) -> list[tuple[str, str, list[float], list[int], list[int]]]:
    rows = []
    drills = {seed: Drill(seed) for seed in seeds}
    for play_name, answers in PLAYS.items():
        for policy in POLICIES:
            ratios, moves, served = [], [], []
            for seed, drill in drills.items():
                out = play(drill, policy, answers, seed)
                check(drill, out)
                travel = float(sum(drill.distance[i, j] for i, j in out.accepted.items()))
                ratios.append(travel / optimum(drill, out))
                moves.append(out.moves)
                served.append(len(out.accepted))
            rows.append((play_name, policy.name, ratios, moves, served))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1-5", help="first-last (default 1-5)")
    first, _, last = parser.parse_args().seeds.partition("-")
    seeds = list(range(int(first), int(last or first) + 1))
    print(f"outage, seeds {seeds[0]}-{seeds[-1]}: travel against the report's optimum\n")
    print("| volunteers | policy | travel / optimum, mean | per seed | moves, mean | needs served, fewest |")
    print("|---|---|---:|---|---:|---:|")
    for play_name, policy, ratios, moves, served in run(seeds):
        per_seed = ", ".join(f"{r:.2f}" for r in ratios)
        mean = sum(ratios) / len(ratios)
        print(f"| {play_name} | {policy} | {mean:.2f}× | {per_seed} | {sum(moves) / len(moves):.0f} | {min(served)} |")


if __name__ == "__main__":
    main()
