"""Aidline through the peer benchmark's adapter interface (its README, "The adapter").

Everything goes through Aidline's own code: volunteers are written by the store's
save_volunteer script, needs by the intake function, matched by dispatch.match_need, read back
through the store. The benchmark's workload ids map to Aidline ids: volunteer n is `vol_<n>`;
needs keep their workload id in a hash beside Aidline's records.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import redis

from service import dispatch
from service.bootstrap import bootstrap
from service.config import Settings
from service.deps import Deps
from service.models import NeedStatus, Principal, Role, Volunteer
from service.needs import submit_need
from service.volunteers import build_volunteer

KINDS = {
    "errand": "errand_shopping",
    "coal_hauling": "coal_hauling",
    "plumbing_repair": "plumbing_repair",
    "transport": "transport",
    "meal_delivery": "meal_delivery",
    "water_carry": "water_delivery",
    "electrical_repair": "electrical_repair",
    "tutoring": "tutoring",
    "mediation": "mediation",
    "medical_visit": "medicine_pickup",
    "water_delivery": "water_delivery",
    "home_repair": "other",
}
"""Workload kind -> Aidline kind (the required skills are the workload's own)."""

RESOLVED = {NeedStatus.OFFERED, NeedStatus.ASSIGNED, NeedStatus.ESCALATED}
BENCH = Principal(role=Role.DISPATCHER, token_id="bench")


class NoJobs:
    """A job queue that runs nothing: the core rows call the matcher themselves."""

    def enqueue(self, func: str, *, queue: str, at: datetime | None = None, **kwargs: str) -> None:
        return None


def _client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


def _radius_key(settings: Settings) -> str:
    return f"{settings.key_prefix}bench:max_radius_km"


def _needs_key(settings: Settings) -> str:
    return f"{settings.key_prefix}bench:needs"


def _deps(redis_url: str, *, jobs: bool) -> Deps:
    """Deps on the benchmark's Redis, searching as far as load_volunteers asked."""
    connection = _client(redis_url)
    settings = Settings.from_env(redis_url=redis_url)
    stored = connection.get(_radius_key(settings))
    if stored is not None:
        settings = dataclasses.replace(settings, max_radius_km=float(stored))
    return bootstrap(settings, connection=connection, jobs=None if jobs else NoJobs())


def volunteer_id(n: int) -> str:
    return f"vol_{n}"


def load_volunteers(redis_url: str, volunteers: list[dict[str, Any]], *, max_radius_km: float) -> None:
    deps = _deps(redis_url, jobs=False)
    deps.redis.set(_radius_key(deps.settings), repr(float(max_radius_km)))
    now = deps.clock.now()

    def built() -> Iterator[Volunteer]:
        for v in volunteers:
            yield build_volunteer(
                volunteer_in={
                    "name": f"Volunteer {v['id']}",
                    "phone": f"+86{v['id']:011d}",
                    "skills": v["skills"],
                    "location": {"lat": v["lat"], "lon": v["lon"]},
                    "capacity": v["capacity"],
                    "on_duty": v["available"],
                },
                now=now,
                volunteer_id=volunteer_id(v["id"]),
            )

    deps.store.volunteers.create_many(built(), now_iso=now.isoformat())


def submit_needs(redis_url: str, needs: list[dict[str, Any]], *, enqueue: bool) -> list[str]:
    deps = _deps(redis_url, jobs=enqueue)
    ids = []
    for need in needs:
        created = submit_need(
            deps=deps,
            need_in={
                "kind": KINDS[need["kind"]],
                "skills": list(need["skills"]),
                "location": {"lat": need["lat"], "lon": need["lon"]},
                "priority": "normal",
                "volunteers_needed": 1,
                "radius_km": deps.settings.max_radius_km,
            },
            principal=BENCH,
        )
        ids.append(created.id)
    deps.redis.hset(_needs_key(deps.settings), mapping={nid: need["id"] for nid, need in zip(ids, needs, strict=True)})
    return ids


def matcher(redis_url: str) -> Callable[[str], object]:
    deps = _deps(redis_url, jobs=False)

    def match(need_id: str) -> object:
        return dispatch.match_need(deps=deps, need_id=need_id)

    return match


def results(redis_url: str) -> dict[int, int | None]:
    deps = _deps(redis_url, jobs=False)
    workload = {k.decode(): int(v) for k, v in deps.redis.hgetall(_needs_key(deps.settings)).items()}
    out: dict[int, int | None] = {}
    for need_id, (status, holders) in deps.store.needs.holders(list(workload)).items():
        if status is None or status not in RESOLVED:
            continue
        if status is NeedStatus.ESCALATED and not holders:
            out[workload[need_id]] = None
        elif len(holders) == 1:
            out[workload[need_id]] = int(holders[0].removeprefix("vol_"))
        else:
            raise RuntimeError(f"need {need_id} is {status} with holders {holders}")
    return out


def volunteer_load(redis_url: str) -> dict[int, int]:
    deps = _deps(redis_url, jobs=False)
    ids = deps.store.volunteers.ids_range(start=0, count=deps.store.volunteers.count())
    loads = {}
    for start in range(0, len(ids), 10_000):
        for v in deps.store.volunteers.get_many(ids[start : start + 10_000]):
            if v is not None and v.load:
                loads[int(v.id.removeprefix("vol_"))] = v.load
    return loads


def reset(redis_url: str) -> None:
    deps = _deps(redis_url, jobs=False)
    deps.store.clear_activity()
    deps.redis.delete(_needs_key(deps.settings))
    for key in deps.redis.scan_iter(match="rq:*", count=1000):
        deps.redis.delete(key)


def worker_command() -> list[str]:
    return [".venv/bin/aidline", "worker", "--processes", "1", "--match-only"]


def describe(redis_url: str) -> dict[str, Any]:
    deps = _deps(redis_url, jobs=False)
    return {
        "max_radius_km": deps.settings.max_radius_km,
        "first_ring_km": deps.settings.first_ring_km,
        "area_km2": deps.settings.area_km2,
        "kinds": KINDS,
        "worker": worker_command(),
    }
