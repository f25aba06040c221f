"""Intake in bulk: every item checked (and geocoded) before anything is stored, then all stored, queued and
announced together."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pytest

from service import jobs
from service.deps import Deps
from service.exceptions import InvalidInput, ServiceUnavailable
from service.models import Location, NeedStatus, Principal, Role, Topic
from service.needs import MAX_BATCH, submit_need, submit_needs
from tests.conftest import NEED

INTAKE = Principal(role=Role.INTAKE, token_id="tok_hotline")


class RecordingJobs:
    """A JobQueue that only remembers what it was asked to run."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def enqueue(self, func: str, *, queue: str, at: datetime | None = None, **kwargs: str) -> None:
        self.calls.append((func, queue))


class AddressBook:
    """A geocoder that knows some addresses and counts how often it is asked."""

    def __init__(self, known: dict[str, Location]) -> None:
        self.known = known
        self.asked: list[str] = []

    def locate(self, address: str) -> Location:
        self.asked.append(address)
        if address not in self.known:
            raise InvalidInput("not found", errors={"json": {"address": ["Address not found by the geocoder."]}})
        return self.known[address]


class Unreachable:
    def locate(self, address: str) -> Location:
        raise ServiceUnavailable("the geocoder could not be reached")


@pytest.fixture
def recorded(deps: Deps) -> Deps:
    return dataclasses.replace(deps, jobs=RecordingJobs())


def item(**overrides: Any) -> dict[str, Any]:
    """One need as the schema hands it over: plain values, defaults filled in."""
    return {**NEED, "vulnerability": [], "priority": "normal", "volunteers_needed": 1, **overrides}


def without_location(address: str) -> dict[str, Any]:
    body = item(address=address)
    body.pop("location")
    return body


def nothing_stored(deps: Deps) -> bool:
    return (
        sum(deps.store.needs.count_by_status().values()) == 0
        and deps.store.backlog.waiting_count() == 0
        and deps.store.backlog.outbox_count() == 0
    )


def test_every_need_of_a_batch_is_stored_queued_and_announced_in_the_order_sent(recorded: Deps) -> None:
    apart = [{"lat": NEED["location"]["lat"] + 0.05 * i, "lon": NEED["location"]["lon"]} for i in range(50)]
    needs_in = [item(description=f"house {i}", location=apart[i]) for i in range(50)]  # 5 km apart: no incident

    created = submit_needs(deps=recorded, needs_in=needs_in, principal=INTAKE)

    assert [n.description for n in created] == [f"house {i}" for i in range(50)]
    assert len({n.id for n in created}) == len({n.tracking_code for n in created}) == 50
    for need in created:
        stored = recorded.store.needs.get(need.id)
        assert stored == need
        assert stored.status is NeedStatus.QUEUED
        assert recorded.store.needs.id_for_tracking(need.tracking_code) == need.id
        [event] = recorded.store.needs.events(need.id)
        assert event.type == "created" and event.detail["channel"] == "intake"
    assert recorded.store.needs.ids_page(status=None, created_by=INTAKE.token_id, before=None, limit=100) == sorted(
        (n.id for n in created), reverse=True
    )
    assert recorded.store.backlog.waiting_ids() == [n.id for n in created], "waiting in the order sent"
    announced = recorded.store.backlog.peek_outbox(100)
    assert [(a["topic"], a["need_id"]) for a in announced] == [(Topic.RECEIVED.value, n.id) for n in created]
    assert recorded.jobs.calls == [(jobs.DRAIN_MATCHES, jobs.URGENT), (jobs.DRAIN_NOTIFICATIONS, jobs.NOTIFY)], (
        "each drain is armed and enqueued once for the whole batch"
    )


def test_a_batch_of_one_gives_the_need_a_single_submission_gives(recorded: Deps) -> None:
    [batched] = submit_needs(deps=recorded, needs_in=[item()], principal=INTAKE)
    single = submit_need(deps=recorded, need_in=item(), principal=INTAKE)

    different = {"id", "tracking_code"}
    assert {k: v for k, v in vars(batched).items() if k not in different} == {
        k: v for k, v in vars(single).items() if k not in different
    }


def test_every_item_with_a_past_deadline_is_named_and_nothing_is_stored(recorded: Deps) -> None:
    past = recorded.clock.now() - timedelta(minutes=1)
    needs_in = [item(), item(deadline=past), item(), item(deadline=past)]

    with pytest.raises(InvalidInput) as refused:
        submit_needs(deps=recorded, needs_in=needs_in, principal=INTAKE)

    assert refused.value.errors == {
        "json": {"needs": {1: {"deadline": ["Must be in the future."]}, 3: {"deadline": ["Must be in the future."]}}}
    }
    assert "needs.1.deadline" in refused.value.message and "needs.3.deadline" in refused.value.message
    assert nothing_stored(recorded)
    assert recorded.jobs.calls == []


def test_addresses_are_all_geocoded_before_anything_is_stored(recorded: Deps) -> None:
    book = AddressBook({"Station 2, house 14": Location(lat=46.3, lon=132.2)})
    geocoded = dataclasses.replace(recorded, geocoder=book)
    needs_in = [without_location("Station 2, house 14") for _ in range(40)]
    needs_in[37] = without_location("Nowhere 9")

    with pytest.raises(InvalidInput) as refused:
        submit_needs(deps=geocoded, needs_in=needs_in, principal=INTAKE)

    assert refused.value.errors == {"json": {"needs": {37: {"address": ["Address not found by the geocoder."]}}}}
    assert nothing_stored(recorded)
    assert recorded.jobs.calls == []


def test_the_geocoder_is_asked_once_per_distinct_address(recorded: Deps) -> None:
    book = AddressBook({"Station 2, house 14": Location(lat=46.3, lon=132.2), "Mill 3": Location(lat=46.4, lon=132.3)})
    geocoded = dataclasses.replace(recorded, geocoder=book)
    needs_in = [without_location("Station 2, house 14"), without_location("Mill 3")] * 10
    needs_in += [without_location("Nowhere 9"), without_location("Nowhere 9")]

    with pytest.raises(InvalidInput) as refused:
        submit_needs(deps=geocoded, needs_in=needs_in, principal=INTAKE)

    assert set(refused.value.errors["json"]["needs"]) == {20, 21}
    assert sorted(book.asked) == ["Mill 3", "Nowhere 9", "Station 2, house 14"]


def test_an_unreachable_geocoder_refuses_the_whole_batch(recorded: Deps) -> None:
    down = dataclasses.replace(recorded, geocoder=Unreachable())

    with pytest.raises(ServiceUnavailable):
        submit_needs(deps=down, needs_in=[item(), without_location("Mill 3")], principal=INTAKE)

    assert nothing_stored(recorded)


@pytest.mark.parametrize("count", [0, MAX_BATCH + 1])
def test_an_empty_or_oversized_batch_is_refused(recorded: Deps, count: int) -> None:
    with pytest.raises(InvalidInput) as refused:
        submit_needs(deps=recorded, needs_in=[item()] * count, principal=INTAKE)

    assert list(refused.value.errors["json"]) == ["needs"]
    assert nothing_stored(recorded)


def test_needs_of_one_batch_that_form_an_incident_are_all_answered_with_it(recorded: Deps) -> None:
    created = submit_needs(deps=recorded, needs_in=[item(description=f"house {i}") for i in range(6)], principal=INTAKE)

    incident_ids = {n.incident_id for n in created}
    assert len(incident_ids) == 1 and None not in incident_ids, "the first four were drawn in by the fifth"
    assert [recorded.store.needs.get(n.id).incident_id for n in created] == [n.incident_id for n in created]
