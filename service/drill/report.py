"""The drill report, computed from what the API answered alone: the needs, their timelines, their
notifications and the volunteers. Pure: no I/O, so it can be checked on hand-made timelines.

Times are the service's own timestamps (milliseconds, UTC). Latencies are the seconds the drill
measured; the drill divides the scenario's times (arrivals, answers, accept windows, deadlines) by
its speed, so a latency times the speed is the same moment in scenario time.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from service.matching import distance_km
from service.models import Location

RESOLVED = ("done", "closed")
URGENT_PRIORITIES = frozenset({"critical", "high"})
URGENT_VULNERABILITIES = frozenset({"elderly_alone", "medical", "livestock"})
OFFER_EVENTS = ("offered", "assigned_by_dispatcher")
ACCEPT_EVENTS = ("accepted", "assigned", "assigned_by_dispatcher")
OFFER_ENDED = ("offer_declined", "offer_expired", "offer_withdrawn", "offer_preempted")
NEED_ENDS = ("done", "closed", "cancelled", "deferred")
"""Events after which a need needs nobody any more (until it is reopened)."""
RELEASES_ALL = ("done", "closed", "cancelled", "deferred", "reopened")
"""Events that end every live offer of the need at once."""
DEFAULT_RADIUS_KM = 25.0
URGENT_WAIT_GRACE_S = 1.0
"""An urgent need counts as waiting behind an ordinary one only if the overlap lasts longer than this:
the moment between intake and the first match is not waiting."""
INFEASIBLE = 1e9
OFFER_COUNTS = ("offered", "accepted", "assigned_by_dispatcher", "declined", "expired", "withdrawn")


@dataclass
class Played:
    """What a drill saw: the final needs, their timelines and notifications, the volunteers, and samples."""

    scenario: str
    title: str
    speed: float
    seed: int
    started_at: str
    ended_at: str
    wall_seconds: float
    timed_out: bool
    needs: list[dict[str, Any]]
    events: dict[str, list[dict[str, Any]]]
    notifications: dict[str, list[dict[str, Any]]]
    volunteers: dict[str, dict[str, Any]]
    drill_volunteers: list[str]
    samples: list[tuple[float, dict[str, int]]] = field(default_factory=list)
    """(wall seconds since the first arrival was due, drill needs by status) at each poll."""
    answers: dict[str, int] = field(default_factory=dict)
    """What the drill's volunteers did with their offers: accepted, declined, silent, too_late."""
    requests: int = 0
    throttled: int = 0


def ts(stamp: str) -> float:
    """An ISO UTC timestamp as epoch seconds (milliseconds kept)."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def percentiles(values: Iterable[float]) -> dict[str, float | None]:
    """p50, p95 (linear between the nearest ranks) and max, rounded to milliseconds; None when empty."""
    ordered = sorted(values)
    if not ordered:
        return {"p50": None, "p95": None, "max": None}

    def at(q: float) -> float:
        position = (len(ordered) - 1) * q
        low, high = math.floor(position), math.ceil(position)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    return {"p50": round(at(0.5), 3), "p95": round(at(0.95), 3), "max": round(ordered[-1], 3)}


def is_urgent(need: dict[str, Any]) -> bool:
    return need.get("priority") in URGENT_PRIORITIES or bool(
        set(need.get("vulnerability") or []) & URGENT_VULNERABILITIES
    )


def latencies(need: dict[str, Any], events: list[dict[str, Any]]) -> tuple[float | None, float | None]:
    """Seconds from intake to the first offer, and to the first acceptance (or direct assignment)."""
    created = ts(need["created_at"])
    first_offer = next((ts(e["at"]) for e in events if e["type"] in OFFER_EVENTS), None)
    accepted = next((ts(e["at"]) for e in events if e["type"] in ACCEPT_EVENTS), None)
    return (
        None if first_offer is None else max(first_offer - created, 0.0),
        None if accepted is None else max(accepted - created, 0.0),
    )


@dataclass
class OfferSpan:
    """One offer on a need's timeline: pending from `start` until it was answered or ended, then held if
    accepted until the need released it."""

    offer_id: str
    volunteer_id: str
    start: float
    expires: float = math.inf
    accepted: float | None = None
    ended: float | None = None

    def pending(self, horizon: float) -> tuple[float, float]:
        """From the offer until it was answered or ended; an offer past its window still holds its
        volunteer (and its need) until the service ends it, so the window counts only when the
        timeline never says."""
        answered = [x for x in (self.accepted, self.ended) if x is not None]
        end = min(answered) if answered else min(self.expires, horizon)
        return self.start, max(end, self.start)

    def held(self, horizon: float) -> tuple[float, float] | None:
        if self.accepted is None:
            return None
        return self.accepted, max(self.ended if self.ended is not None else horizon, self.accepted)


def offer_spans(events: list[dict[str, Any]]) -> list[OfferSpan]:
    """Every offer of one need with when it was pending and held, read from the timeline."""
    spans: dict[str, OfferSpan] = {}
    for event in events:
        kind, at, detail = event["type"], ts(event["at"]), event.get("detail") or {}
        offer_id = detail.get("offer_id", "")
        if kind == "offered":
            expires = ts(detail["expires_at"]) if detail.get("expires_at") else math.inf
            spans[offer_id] = OfferSpan(offer_id, detail.get("volunteer_id", ""), at, expires)
        elif kind == "assigned_by_dispatcher":
            spans[offer_id] = OfferSpan(offer_id, detail.get("volunteer_id", ""), at, at, accepted=at)
        elif kind == "accepted" and offer_id in spans:
            spans[offer_id].accepted = at
        elif kind in OFFER_ENDED and offer_id in spans and spans[offer_id].ended is None:
            spans[offer_id].ended = at
        elif kind == "assigned":
            # fully staffed: the offers still pending were withdrawn at this moment
            for span in spans.values():
                if span.accepted is None and span.ended is None:
                    span.ended = at
        elif kind in RELEASES_ALL:
            for span in spans.values():
                if span.ended is None:
                    span.ended = at
    return list(spans.values())


def open_spans(need: dict[str, Any], events: list[dict[str, Any]], horizon: float) -> list[tuple[float, float]]:
    """When the need still needed someone: from intake until done, closed, cancelled or deferred (again
    after a reopening)."""
    spans = []
    opened: float | None = ts(need["created_at"])
    for event in events:
        at = ts(event["at"])
        if event["type"] in NEED_ENDS and opened is not None:
            spans.append((opened, at))
            opened = None
        elif event["type"] == "reopened" and opened is None:
            opened = at
    if opened is not None:
        spans.append((opened, horizon))
    return spans


def subtract(spans: list[tuple[float, float]], cut: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The parts of `spans` outside every interval of `cut`."""
    out = []
    for start, end in spans:
        pieces = [(start, end)]
        for c_start, c_end in cut:
            next_pieces = []
            for p_start, p_end in pieces:
                if c_end <= p_start or c_start >= p_end:
                    next_pieces.append((p_start, p_end))
                    continue
                if c_start > p_start:
                    next_pieces.append((p_start, c_start))
                if c_end < p_end:
                    next_pieces.append((c_end, p_end))
            pieces = next_pieces
        out.extend(pieces)
    return out


def overlap(a: tuple[float, float], spans: list[tuple[float, float]]) -> float:
    """The longest overlap of one interval with any of `spans`."""
    return max((min(a[1], end) - max(a[0], start) for start, end in spans), default=0.0)


def location(record: dict[str, Any]) -> Location:
    return Location(float(record["location"]["lat"]), float(record["location"]["lon"]))


def can_serve(volunteer: dict[str, Any], need: dict[str, Any]) -> bool:
    """The volunteer has every skill the need asks for and lives within its search radius."""
    skills = set(volunteer.get("skills") or []) | {"general"}
    if not set(need.get("skills") or []) <= skills:
        return False
    radius = need.get("radius_km") or DEFAULT_RADIUS_KM
    return distance_km(location(volunteer), location(need)) <= radius


def urgent_after_ordinary(
    needs: list[dict[str, Any]],
    events: dict[str, list[dict[str, Any]]],
    volunteers: dict[str, dict[str, Any]],
    horizon: float,
    *,
    grace: float = URGENT_WAIT_GRACE_S,
) -> list[str]:
    """Urgent needs that were, at some moment, without any offer while a volunteer who could serve them
    (skills, radius, and had not declined it or let its offer run out) held a pending offer of an
    ordinary need; for longer than `grace` seconds."""
    refused = refusals(events)
    ordinary_pending: list[tuple[str, tuple[float, float]]] = []
    for need in needs:
        if is_urgent(need):
            continue
        for span in offer_spans(events.get(need["id"], [])):
            start, end = span.pending(horizon)
            if end > start:
                ordinary_pending.append((span.volunteer_id, (start, end)))
    found = []
    for need in needs:
        if not is_urgent(need):
            continue
        timeline = events.get(need["id"], [])
        covered = []
        for span in offer_spans(timeline):
            covered.append(span.pending(horizon))
            held = span.held(horizon)
            if held is not None:
                covered.append(held)
        waiting = subtract(open_spans(need, timeline, horizon), covered)
        for volunteer_id, pending in ordinary_pending:
            volunteer = volunteers.get(volunteer_id)
            if volunteer is None or not can_serve(volunteer, need) or (need["id"], volunteer_id) in refused:
                continue
            if overlap(pending, waiting) > grace:
                found.append(need["id"])
                break
    return found


def tasks(needs: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str, float]]:
    """(need, volunteer id, distance km) for every offer accepted (or done) on the needs."""
    return [
        (need, a["volunteer_id"], float(a.get("distance_km") or 0.0))
        for need in needs
        for a in need.get("assignments") or []
        if a["status"] in ("accepted", "completed")
    ]


REFUSALS = ("offer_declined", "offer_expired")
"""An offer the volunteer said no to, or let run out without an answer."""


def refusals(events: dict[str, list[dict[str, Any]]]) -> set[tuple[str, str]]:
    """(need id, volunteer id) for every offer its volunteer declined or left unanswered until it expired."""
    found = set()
    for need_id, timeline in events.items():
        offered = {
            (e.get("detail") or {}).get("offer_id"): (e.get("detail") or {}).get("volunteer_id")
            for e in timeline
            if e["type"] == "offered"
        }
        for event in timeline:
            if event["type"] in REFUSALS:
                detail = event.get("detail") or {}
                volunteer_id = detail.get("volunteer_id") or offered.get(detail.get("offer_id"))
                if volunteer_id:
                    found.add((need_id, volunteer_id))
    return found


def optimal_travel_km(
    done: list[tuple[dict[str, Any], str, float]],
    volunteers: dict[str, dict[str, Any]],
    refused: Collection[tuple[str, str]] = frozenset(),
) -> float:
    """The least total great-circle distance for the same tasks given to the same volunteers, each volunteer
    taking at most max(capacity, tasks they did) of them, only tasks they have the skills for, and none
    they refused (declined, or left unanswered until the offer expired): no dispatcher could have
    sent them there.

    The volunteers did their tasks one after another, so a volunteer's share is bounded by what they did
    (or their capacity, if that is more); the actual assignment is one of the candidates, so the optimum
    is never above the travel measured. Solved as an assignment problem (scipy's linear_sum_assignment)
    with each volunteer repeated once per share it may take and a prohibitive cost where skills lack.
    """
    if not done:
        return 0.0
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    did = Counter(volunteer_id for _, volunteer_id, _ in done)
    slots: list[str] = []
    for volunteer_id, count in did.items():
        capacity = int((volunteers.get(volunteer_id) or {}).get("capacity") or 1)
        slots += [volunteer_id] * max(capacity, count)
    actual = {(need["id"], volunteer_id): km for need, volunteer_id, km in done}
    cost = np.full((len(done), len(slots)), INFEASIBLE)
    for row, (need, _, _) in enumerate(done):
        for col, volunteer_id in enumerate(slots):
            volunteer = volunteers.get(volunteer_id)
            if volunteer is None:
                # gone since: only what it did is known
                if (need["id"], volunteer_id) in actual:
                    cost[row, col] = actual[(need["id"], volunteer_id)]
                continue
            skills = set(volunteer.get("skills") or []) | {"general"}
            if set(need.get("skills") or []) <= skills and (need["id"], volunteer_id) not in refused:
                cost[row, col] = distance_km(location(volunteer), location(need))
    rows, cols = linear_sum_assignment(cost)
    return round(float(sum(cost[r, c] for r, c in zip(rows, cols, strict=True) if cost[r, c] < INFEASIBLE)), 3)


def compute(played: Played) -> dict[str, Any]:
    """The report of one drill."""
    needs = played.needs
    events = played.events
    statuses = Counter(n["status"] for n in needs)
    horizon = max(
        [ts(played.ended_at)] + [ts(e["at"]) for timeline in events.values() for e in timeline],
    )
    first_offer, acceptance = [], []
    reasons: Counter[str] = Counter()
    escalated_ever = 0
    offers: Counter[str] = Counter()
    for need in needs:
        timeline = events.get(need["id"], [])
        offered_s, accepted_s = latencies(need, timeline)
        if offered_s is not None:
            first_offer.append(offered_s)
        if accepted_s is not None:
            acceptance.append(accepted_s)
        escalations = [e for e in timeline if e["type"] == "escalated"]
        for event in escalations:
            reasons[(event.get("detail") or {}).get("reason") or need.get("status_reason") or "unknown"] += 1
        if not escalations and need["status"] == "escalated":
            reasons[need.get("status_reason") or "unknown"] += 1
        escalated_ever += bool(escalations) or need["status"] == "escalated"
        for event in timeline:
            if event["type"] in ("offered", "accepted", "assigned_by_dispatcher", *OFFER_ENDED):
                offers[event["type"].removeprefix("offer_")] += 1
    done = tasks(needs)
    drill = set(played.drill_volunteers)
    per_volunteer = Counter(volunteer_id for _, volunteer_id, _ in done if volunteer_id in drill)
    sent = failed = skipped = pending = 0
    for items in played.notifications.values():
        for item in items:
            sent += item["status"] == "sent"
            failed += item["status"] == "failed"
            skipped += item["status"] == "skipped"
            pending += item["status"] not in ("sent", "failed", "skipped")
    resolved = sum(statuses[s] for s in RESOLVED)
    escalated, deferred, cancelled = statuses["escalated"], statuses["deferred"], statuses["cancelled"]
    waiting_behind = urgent_after_ordinary(needs, events, played.volunteers, horizon)
    return {
        "scenario": played.scenario,
        "title": played.title,
        "speed": played.speed,
        "seed": played.seed,
        "started_at": played.started_at,
        "ended_at": played.ended_at,
        "wall_seconds": played.wall_seconds,
        "timed_out": played.timed_out,
        "needs": len(needs),
        "resolved": resolved,
        "escalated": escalated,
        "deferred": deferred,
        "cancelled": cancelled,
        "open": len(needs) - resolved - escalated - deferred - cancelled,
        "statuses": dict(sorted(statuses.items())),
        "escalated_ever": escalated_ever,
        "escalation_reasons": dict(reasons.most_common()),
        "first_offer_s": percentiles(first_offer),
        "acceptance_s": percentiles(acceptance),
        "times": (
            f"seconds measured during the drill at speed {played.speed:g}: the scenario's times were divided by "
            f"{played.speed:g}, so multiply by {played.speed:g} for scenario seconds"
        ),
        "urgent_needs": sum(is_urgent(n) for n in needs),
        "urgent_after_ordinary": len(waiting_behind),
        "travel_km": round(sum(km for _, _, km in done), 3),
        "optimal_travel_km": optimal_travel_km(done, played.volunteers, refusals(events)),
        "tasks_per_volunteer": {
            "max": max(per_volunteer.values(), default=0),
            "mean": round(sum(per_volunteer.values()) / len(per_volunteer), 2) if per_volunteer else 0.0,
        },
        "volunteers": len(played.drill_volunteers),
        "offers": {k: offers[k] for k in OFFER_COUNTS},
        "answers": dict(sorted(played.answers.items())),
        "notifications": {"sent": sent, "failed": failed, "skipped": skipped, "pending": pending},
        "requests": played.requests,
        "throttled": played.throttled,
    }


def timed_out(report: dict[str, Any]) -> str | None:
    """Why a drill failed, on one line, when it stopped at its time limit (None when it ended by itself)."""
    if not report["timed_out"]:
        return None
    settled = (*RESOLVED, "escalated", "deferred", "cancelled")
    still = ", ".join(f"{count} {status}" for status, count in report["statuses"].items() if status not in settled)
    why = (
        "; offers to volunteers outside the drill wait out their accept window (nobody answers for them)"
        if report["statuses"].get("offered")
        else ""
    )
    return (
        f"drill {report['scenario']} timed out after {report['wall_seconds']:.0f} s with {report['open']} of its "
        f"{report['needs']} needs unfinished{f' ({still})' if still else ''}{why}"
    )


def table(report: dict[str, Any]) -> str:
    """The report as a readable table."""

    def line(label: str, value: Any) -> str:
        return f"  {label:<34} {value}"

    def spread(p: dict[str, Any]) -> str:
        if p["p50"] is None:
            return "-"
        return f"p50 {p['p50']:.2f}  p95 {p['p95']:.2f}  max {p['max']:.2f}"

    speed = report["speed"]
    rows = [
        f"Drill {report['scenario']} (seed {report['seed']}, speed {speed:g}): {report['title']}",
        line("ran", f"{report['wall_seconds']:.1f} s{' (timed out)' if report['timed_out'] else ''}"),
        line("needs", report["needs"]),
        line("resolved (done or closed)", report["resolved"]),
        line("escalated at the end", report["escalated"]),
        line("deferred / cancelled / still open", f"{report['deferred']} / {report['cancelled']} / {report['open']}"),
        line("escalated at some moment", report["escalated_ever"]),
    ]
    for reason, count in report["escalation_reasons"].items():
        rows.append(line(f"  {count} ×", reason))
    rows += [
        line("intake to first offer, s", spread(report["first_offer_s"])),
        line("intake to acceptance, s", spread(report["acceptance_s"])),
        line("", f"(measured; × {speed:g} for scenario seconds)"),
        line("urgent needs", report["urgent_needs"]),
        line("urgent, waiting behind ordinary", report["urgent_after_ordinary"]),
        line("travel km (accepted offers)", f"{report['travel_km']:.1f}"),
        line("optimal travel km (same tasks)", f"{report['optimal_travel_km']:.1f}"),
        line(
            "tasks per drill volunteer",
            f"max {report['tasks_per_volunteer']['max']}  mean {report['tasks_per_volunteer']['mean']:.2f}",
        ),
        line("offers", "  ".join(f"{k} {v}" for k, v in report["offers"].items())),
        line("drill volunteers' answers", "  ".join(f"{k} {v}" for k, v in report["answers"].items()) or "-"),
        line(
            "notifications",
            f"sent {report['notifications']['sent']}  failed {report['notifications']['failed']}"
            f"  skipped {report['notifications']['skipped']}  pending {report['notifications']['pending']}",
        ),
        line("API requests (throttled)", f"{report['requests']} ({report['throttled']})"),
    ]
    return "\n".join(rows)
