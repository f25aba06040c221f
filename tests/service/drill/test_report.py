"""The drill report on hand-made timelines: latencies, urgent needs waiting behind ordinary ones, travel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.drill import report
from service.drill.report import Played

T0 = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
KM_PER_DEGREE = 6371.009 * 3.141592653589793 / 180  # along the equator, as geopy's great circle measures


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def need(
    need_id: str,
    *,
    created: float = 0,
    priority: str = "normal",
    skills: list[str] | None = None,
    lat: float = 46.33,
    lon: float = 132.21,
    status: str = "done",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": need_id,
        "created_at": at(created),
        "priority": priority,
        "vulnerability": [],
        "skills": skills or ["driving"],
        "location": {"lat": lat, "lon": lon},
        "radius_km": 25.0,
        "status": status,
        "status_reason": None,
        "assignments": [],
        **extra,
    }


def volunteer(skills: list[str], lat: float = 46.33, lon: float = 132.21, capacity: int = 1) -> dict[str, Any]:
    return {"skills": ["general", *skills], "location": {"lat": lat, "lon": lon}, "capacity": capacity}


def event(seconds: float, kind: str, **detail: Any) -> dict[str, Any]:
    return {"at": at(seconds), "type": kind, "actor": "system", "detail": detail}


def offered(seconds: float, offer_id: str, volunteer_id: str, window: float = 300) -> dict[str, Any]:
    return event(seconds, "offered", offer_id=offer_id, volunteer_id=volunteer_id, expires_at=at(seconds + window))


def played(
    needs: list[dict[str, Any]], events: dict[str, list[dict[str, Any]]], volunteers: dict[str, Any], **extra: Any
) -> Played:
    return Played(
        scenario="hand",
        title="hand-made",
        speed=10,
        seed=1,
        started_at=at(0),
        ended_at=at(600),
        wall_seconds=600,
        timed_out=extra.pop("timed_out", False),
        needs=needs,
        events=events,
        notifications=extra.pop("notifications", {}),
        volunteers=volunteers,
        drill_volunteers=extra.pop("drill_volunteers", sorted(volunteers)),
        **extra,
    )


# ---- latencies ------------------------------------------------------------------------------------


def test_percentiles_interpolate_between_ranks():
    assert report.percentiles([4, 1, 3, 2]) == {"p50": 2.5, "p95": 3.85, "max": 4}
    assert report.percentiles([]) == {"p50": None, "p95": None, "max": None}


def test_latencies_run_from_intake_to_the_first_offer_and_the_first_acceptance_in_milliseconds():
    timeline = [
        event(0, "created"),
        offered(0.125, "off_1", "vol_a"),
        event(3, "offer_declined", offer_id="off_1", volunteer_id="vol_a"),
        offered(3.010, "off_2", "vol_b"),
        event(12.5, "accepted", offer_id="off_2", volunteer_id="vol_b"),
        event(12.5, "assigned"),
    ]

    assert report.latencies(need("n"), timeline) == (0.125, 12.5)


def test_a_direct_assignment_counts_as_the_first_offer_and_the_acceptance():
    timeline = [event(0, "created"), event(7, "assigned_by_dispatcher", offer_id="off_1", volunteer_id="vol_a")]

    assert report.latencies(need("n"), timeline) == (7.0, 7.0)


def test_a_need_never_offered_has_no_latency():
    assert report.latencies(need("n"), [event(0, "created"), event(0.01, "escalated", reason="nobody")]) == (None, None)


# ---- urgent needs waiting behind ordinary ones --------------------------------------------------------


def test_an_urgent_need_waiting_while_a_capable_volunteer_holds_an_ordinary_offer_counts():
    needs = [
        need("ordinary"),
        need("urgent", created=5, priority="high"),
        need("urgent_served_at_once", created=6, vulnerability=["elderly_alone"]),
        need("urgent_needing_a_tanker", created=7, priority="critical", skills=["tanker_truck", "driving"]),
    ]
    events = {
        # vol_a holds a pending offer of the ordinary need from 0.1 s until it declines at 50 s
        "ordinary": [event(0, "created"), offered(0.1, "o1", "vol_a"), event(50, "offer_declined", offer_id="o1")],
        # meanwhile the urgent need waits from 5 s to 30 s with no offer at all: vol_a could have served it
        "urgent": [
            event(5, "created"),
            offered(30, "o2", "vol_b"),
            event(31, "accepted", offer_id="o2"),
            event(31, "assigned"),
            event(40, "done"),
        ],
        # offered a fraction of a second after intake: that is not waiting
        "urgent_served_at_once": [
            event(6, "created"),
            offered(6.2, "o3", "vol_b"),
            event(8, "accepted", offer_id="o3"),
            event(8, "assigned"),
            event(20, "done"),
        ],
        # waits too, but vol_a has no tanker truck
        "urgent_needing_a_tanker": [
            event(7, "created"),
            offered(45, "o4", "vol_t"),
            event(46, "accepted", offer_id="o4"),
            event(46, "assigned"),
            event(60, "done"),
        ],
    }
    volunteers = {
        "vol_a": volunteer(["driving", "heavy_lifting"]),
        "vol_b": volunteer(["driving"]),
        "vol_t": volunteer(["driving", "tanker_truck"]),
    }

    waiting = report.urgent_after_ordinary(needs, events, volunteers, report.ts(at(600)))

    assert waiting == ["urgent"]
    assert report.compute(played(needs, events, volunteers))["urgent_after_ordinary"] == 1


def test_a_volunteer_beyond_the_urgent_needs_radius_does_not_count():
    needs = [need("ordinary"), need("urgent", created=5, priority="high", radius_km=10.0)]
    events = {
        "ordinary": [event(0, "created"), offered(0.1, "o1", "vol_far")],
        "urgent": [event(5, "created"), event(5.01, "escalated", reason="nobody")],
    }
    far = volunteer(["driving"], lat=46.33 + 20 / 111.2)  # 20 km north, beyond the 10 km radius

    assert report.urgent_after_ordinary(needs, events, {"vol_far": far}, report.ts(at(600))) == []


def test_an_ordinary_offer_that_expired_before_the_urgent_need_came_does_not_count():
    needs = [need("ordinary"), need("urgent", created=100, priority="high")]
    events = {
        "ordinary": [event(0, "created"), offered(0.1, "o1", "vol_a", window=60)],  # pending until 60.1 s
        "urgent": [event(100, "created"), offered(200, "o2", "vol_b")],
    }
    volunteers = {"vol_a": volunteer(["driving"]), "vol_b": volunteer(["driving"])}

    assert report.urgent_after_ordinary(needs, events, volunteers, report.ts(at(600))) == []


def test_a_volunteer_who_declined_the_urgent_need_does_not_count_as_one_who_could_serve_it():
    needs = [need("ordinary", created=20), need("urgent", created=5, priority="high")]
    events = {
        "urgent": [
            event(5, "created"),
            offered(5.1, "o1", "vol_a"),
            event(8, "offer_declined", offer_id="o1"),
            event(8.01, "escalated", reason="nobody else"),
        ],
        # the one who said no to the urgent need then takes an ordinary one: nobody could send them back
        "ordinary": [event(20, "created"), offered(20.1, "o2", "vol_a")],
    }

    assert report.urgent_after_ordinary(needs, events, {"vol_a": volunteer(["driving"])}, report.ts(at(600))) == []


def test_an_offer_past_its_window_is_pending_until_the_service_ends_it():
    spans = report.offer_spans(
        [
            offered(1, "o1", "vol_a", window=10),
            event(12.5, "offer_expired", offer_id="o1"),
            offered(12.5, "o2", "vol_b"),
        ]
    )
    by_id = {s.offer_id: s for s in spans}
    horizon = report.ts(at(600))

    assert by_id["o1"].pending(horizon) == (report.ts(at(1)), report.ts(at(12.5))), "ended by the expiry, not the clock"
    assert by_id["o2"].pending(horizon) == (report.ts(at(12.5)), report.ts(at(312.5))), "never ended: its window"


def test_offers_pending_when_the_need_was_fully_assigned_end_then():
    spans = report.offer_spans(
        [
            event(0, "created"),
            offered(1, "o1", "vol_a"),
            offered(1, "o2", "vol_b"),
            event(4, "accepted", offer_id="o1"),
            event(4, "assigned"),
            event(30, "done"),
        ]
    )

    by_id = {s.offer_id: s for s in spans}
    horizon = report.ts(at(600))
    assert by_id["o2"].pending(horizon) == (report.ts(at(1)), report.ts(at(4)))
    assert by_id["o1"].held(horizon) == (report.ts(at(4)), report.ts(at(30)))


# ---- travel -------------------------------------------------------------------------------------------


def assignment(volunteer_id: str, km: float) -> dict[str, Any]:
    return {"volunteer_id": volunteer_id, "status": "completed", "offer_id": f"off_{volunteer_id}", "distance_km": km}


def test_optimal_travel_swaps_two_volunteers_each_sent_to_the_far_need():
    # A at 0°, B at 2° east on the equator; n1 at 0.5°, n2 at 1.5°. They went crosswise: 1.5° each.
    a, b = volunteer(["driving"], 0, 0), volunteer(["driving"], 0, 2)
    n1 = need("n1", lat=0, lon=0.5, assignments=[assignment("A", 1.5 * KM_PER_DEGREE)])
    n2 = need("n2", lat=0, lon=1.5, assignments=[assignment("B", 1.5 * KM_PER_DEGREE)])

    result = report.compute(played([n1, n2], {"n1": [], "n2": []}, {"A": a, "B": b}))

    assert result["travel_km"] == pytest.approx(3 * KM_PER_DEGREE, abs=0.01)
    assert result["optimal_travel_km"] == pytest.approx(1 * KM_PER_DEGREE, abs=0.01), "A to n1, B to n2: 0.5° each"


def test_optimal_travel_respects_skills():
    # only B has a tanker truck, so B must take n1 even though A is nearer
    a, b = volunteer(["driving"], 0, 0), volunteer(["driving", "tanker_truck"], 0, 2)
    n1 = need("n1", lat=0, lon=0.5, skills=["tanker_truck"], assignments=[assignment("B", 1.5 * KM_PER_DEGREE)])
    n2 = need("n2", lat=0, lon=1.5, assignments=[assignment("A", 1.5 * KM_PER_DEGREE)])

    assert report.optimal_travel_km(report.tasks([n1, n2]), {"A": a, "B": b}) == pytest.approx(
        3 * KM_PER_DEGREE, abs=0.01
    )


def test_optimal_travel_lets_a_volunteer_take_as_many_tasks_as_they_did():
    # A did both needs one after the other; B (capacity 1) did none: A's share stays two
    a, b = volunteer(["driving"], 0, 0), volunteer(["driving"], 0, 1)
    n1 = need("n1", lat=0, lon=0, assignments=[assignment("A", 0)])
    n2 = need("n2", lat=0, lon=0, assignments=[assignment("A", 0)])

    assert report.optimal_travel_km(report.tasks([n1, n2]), {"A": a, "B": b}) == 0.0


def test_optimal_travel_does_not_send_a_volunteer_to_a_need_they_declined_or_left_unanswered():
    # A is on top of both needs but declined n1 and let n2's offer expire: B had to go, and so would any plan
    a, b = volunteer(["driving"], 0, 0, capacity=3), volunteer(["driving"], 0, 1, capacity=2)
    n1 = need("n1", lat=0, lon=0, assignments=[assignment("B", KM_PER_DEGREE)])
    n2 = need("n2", lat=0, lon=0, assignments=[assignment("B", KM_PER_DEGREE)])
    n3 = need("n3", lat=0, lon=0, assignments=[assignment("A", 0)])
    events = {
        "n1": [offered(1, "o1", "A"), event(2, "offer_declined", offer_id="o1"), offered(2, "o2", "B")],
        "n2": [offered(1, "o3", "A"), event(301, "offer_expired", offer_id="o3"), offered(301, "o4", "B")],
    }
    done = report.tasks([n1, n2, n3])

    assert report.refusals(events) == {("n1", "A"), ("n2", "A")}
    assert report.optimal_travel_km(done, {"A": a, "B": b}) == 0.0, "without what they refused"
    assert report.optimal_travel_km(done, {"A": a, "B": b}, report.refusals(events)) == pytest.approx(
        2 * KM_PER_DEGREE, abs=0.01
    )


# ---- the whole report ----------------------------------------------------------------------------------


def test_the_report_accounts_for_every_need_and_counts_reasons_tasks_and_notifications():
    needs = [
        need("n1", status="closed", assignments=[assignment("vol_d1", 2.0)]),
        need("n2", status="done", assignments=[assignment("vol_d1", 3.0)]),
        need("n3", status="escalated", status_reason="deadline at risk: still not assigned"),
        need("n4", status="deferred"),
        need("n5", status="offered", assignments=[assignment("vol_other", 1.0)]),
    ]
    events = {
        "n1": [event(0, "created"), offered(1, "o1", "vol_d1"), event(2, "accepted", offer_id="o1")],
        "n2": [
            event(0, "created"),
            event(0.5, "escalated", reason="no available volunteer with driving within 25 km"),
            offered(4, "o2", "vol_d1"),
            event(8, "accepted", offer_id="o2"),
        ],
        "n3": [event(0, "created"), event(9, "escalated", reason="deadline at risk: still not assigned")],
        "n4": [event(0, "created"), event(3, "deferred", reason="no water left")],
        "n5": [event(0, "created")],
    }
    notifications = {"n1": [{"status": "sent"}, {"status": "failed"}], "n2": [{"status": "sent"}]}
    volunteers = {
        "vol_d1": volunteer(["driving"], capacity=2),
        "vol_d2": volunteer(["driving"]),
        "vol_other": volunteer(["driving"]),
    }

    result = report.compute(
        played(needs, events, volunteers, notifications=notifications, drill_volunteers=["vol_d1", "vol_d2"])
    )

    assert result["needs"] == 5
    assert (result["resolved"], result["escalated"], result["deferred"], result["cancelled"], result["open"]) == (
        2,
        1,
        1,
        0,
        1,
    )
    assert result["escalated_ever"] == 2
    assert result["escalation_reasons"] == {
        "no available volunteer with driving within 25 km": 1,
        "deadline at risk: still not assigned": 1,
    }
    assert result["first_offer_s"] == {"p50": 2.5, "p95": 3.85, "max": 4.0}
    assert result["acceptance_s"] == {"p50": 5.0, "p95": 7.7, "max": 8.0}
    assert result["travel_km"] == 6.0
    assert result["tasks_per_volunteer"] == {"max": 2, "mean": 2.0}, "drill volunteers who did something"
    assert result["notifications"] == {"sent": 2, "failed": 1, "skipped": 0, "pending": 0}
    assert result["speed"] == 10 and "10" in result["times"]
    assert "resolved (done or closed)" in report.table(result)


def test_an_ordinary_offer_preempted_for_an_urgent_need_stops_counting_as_pending_then() -> None:
    events = [
        {"at": "2026-11-29T12:00:00.000Z", "type": "offered", "detail": {"offer_id": "o1", "volunteer_id": "v1"}},
        {
            "at": "2026-11-29T12:00:02.000Z",
            "type": "offer_preempted",
            "detail": {"offer_id": "o1", "volunteer_id": "v1", "for_need_id": "n2"},
        },
    ]

    [span] = report.offer_spans(events)

    assert span.pending(horizon=report.ts("2026-11-29T12:10:00.000Z")) == (
        report.ts("2026-11-29T12:00:00.000Z"),
        report.ts("2026-11-29T12:00:02.000Z"),
    )


# ---- a drill that timed out ---------------------------------------------------------------------------


def test_a_drill_that_timed_out_says_why_on_one_line_and_one_that_ended_by_itself_says_nothing():
    needs = [need("a"), need("b", status="offered"), need("c", status="offered"), need("d", status="escalated")]
    needs.append(need("e", status="assigned"))

    ended = report.compute(played(needs, {}, {}))
    stopped = report.compute(played(needs, {}, {}, timed_out=True))

    assert report.timed_out(ended) is None
    assert report.timed_out(stopped) == (
        "drill hand timed out after 600 s with 3 of its 5 needs unfinished (1 assigned, 2 offered); offers to "
        "volunteers outside the drill wait out their accept window (nobody answers for them)"
    )
