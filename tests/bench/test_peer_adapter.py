"""bench/peer_adapter.py: the peer benchmark drives Aidline through it, so it must keep working."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


@pytest.fixture(scope="module")
def adapter(load_bench: Callable[[str], ModuleType]) -> ModuleType:
    return load_bench("peer_adapter")


VOLUNTEERS = [
    {"id": 1, "lat": 46.80, "lon": 132.20, "skills": ["general", "driving"], "capacity": 1, "available": True},
    {
        "id": 2,
        "lat": 46.81,
        "lon": 132.20,
        "skills": ["general", "driving", "heavy_lifting"],
        "capacity": 2,
        "available": True,
    },
    {"id": 3, "lat": 46.80, "lon": 132.21, "skills": ["general"], "capacity": 1, "available": False},
    {"id": 4, "lat": 47.10, "lon": 132.20, "skills": ["general", "plumbing"], "capacity": 1, "available": True},
]
NEEDS = [
    {"id": 10, "kind": "water_carry", "lat": 46.80, "lon": 132.20, "skills": ["driving", "heavy_lifting"]},
    {"id": 11, "kind": "transport", "lat": 46.80, "lon": 132.20, "skills": ["driving"]},
    {"id": 12, "kind": "errand", "lat": 46.80, "lon": 132.21, "skills": ["general"]},
    {"id": 13, "kind": "plumbing_repair", "lat": 46.80, "lon": 132.20, "skills": ["plumbing"]},
    {"id": 14, "kind": "tutoring", "lat": 46.80, "lon": 132.20, "skills": ["tutoring"]},
]


def test_the_adapter_loads_matches_reads_back_and_resets(adapter: ModuleType, redis_server: Any, connection: Any):
    url = redis_server.url
    adapter.load_volunteers(url, VOLUNTEERS, max_radius_km=100)
    ids = adapter.submit_needs(url, NEEDS, enqueue=False)
    assert len(ids) == len(NEEDS) and connection.keys("rq:*") == [], "no job without enqueue"
    assert adapter.results(url) == {}

    match = adapter.matcher(url)
    for need_id in ids:
        match(need_id)

    # 33 km north: only reachable because the adapter widened every need to 100 km
    assert adapter.results(url) == {10: 2, 11: 1, 12: 2, 13: 4, 14: None}
    assert adapter.volunteer_load(url) == {1: 1, 2: 2, 4: 1}

    adapter.reset(url)
    assert adapter.results(url) == {}
    assert adapter.volunteer_load(url) == {}
    again = adapter.submit_needs(url, NEEDS[:1], enqueue=True)
    assert connection.keys("rq:queue:urgent") or connection.keys("rq:queue:default"), "intake enqueued its job"
    adapter.matcher(url)(again[0])
    assert adapter.results(url) == {10: 2}


def test_the_worker_command_is_one_match_only_aidline_worker(adapter: ModuleType) -> None:
    argv = adapter.worker_command()
    assert argv == [".venv/bin/aidline", "worker", "--processes", "1", "--match-only"]
    assert (Path(sys.executable).parent / "aidline").exists(), "make install puts aidline beside the interpreter"
