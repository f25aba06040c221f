"""Matching benchmark against a real redis-server: per-match latency, end-to-end throughput,
the RQ no-op floor, a linear scan for comparison, and Redis memory per volunteer.

Run with `make bench` (or `python bench/bench_matching.py --sizes 1000,10000`). Prints a
Markdown table for the README. Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))

from service import clock, dispatch, jobs  # noqa: E402
from service.bootstrap import bootstrap  # noqa: E402
from service.config import Settings  # noqa: E402
from service.deps import Deps  # noqa: E402
from service.launcher import redis_command  # noqa: E402
from service.matching import Candidate, Requirement, choose_volunteers  # noqa: E402
from service.models import EventType, Location, NeedStatus, Principal, Role, Volunteer  # noqa: E402
from service.needs import submit_need  # noqa: E402
from service.volunteers import build_volunteer  # noqa: E402

# A province-sized box (about 450 x 450 km) in the north-east, with volunteers clustered in towns.
LAT_RANGE = (45.0, 49.0)
LON_RANGE = (127.0, 133.0)
TOWNS = 400
SKILL_MIX = [
    ["driving"],
    ["heavy_lifting"],
    ["plumbing"],
    ["electrical"],
    ["heating"],
    ["cooking"],
    ["driving", "heavy_lifting"],
    ["medical"],
    ["tutoring"],
    ["mediation"],
    [],
    [],
]


class NullJobs:
    """Drops follow-up jobs, for timing the match alone."""

    def enqueue(self, func: str, *, queue: str, at: datetime | None = None, **kwargs: str) -> None:
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(directory: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(redis_command(port, directory), stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return process, port


def town_centres(rng: random.Random) -> list[tuple[float, float]]:
    return [(rng.uniform(*LAT_RANGE), rng.uniform(*LON_RANGE)) for _ in range(TOWNS)]


def place(rng: random.Random, towns: list[tuple[float, float]]) -> tuple[float, float]:
    """80 % within a few km of a town, 20 % anywhere in the province."""
    if rng.random() < 0.8:
        lat, lon = rng.choice(towns)
        return (min(max(lat + rng.gauss(0, 0.03), -89), 89), lon + rng.gauss(0, 0.04))
    return rng.uniform(*LAT_RANGE), rng.uniform(*LON_RANGE)


def load_volunteers(deps: Deps, count: int, rng: random.Random, towns: list[tuple[float, float]]) -> float:
    """Register `count` on-duty volunteers through the store's own Lua script, pipelined."""
    started = time.perf_counter()
    now = deps.clock.now()

    def volunteers() -> Iterator[Volunteer]:
        for i in range(count):
            lat, lon = place(rng, towns)
            yield build_volunteer(
                volunteer_in={
                    "name": f"V{i}",
                    "phone": f"+8613{i:09d}",
                    "skills": rng.choice(SKILL_MIX),
                    "location": {"lat": lat, "lon": lon},
                    "capacity": rng.randint(1, 3),
                    "on_duty": True,
                },
                now=now,
            )

    deps.store.volunteers.create_many(volunteers(), now_iso=clock.iso(now))
    return time.perf_counter() - started


def need_body(rng: random.Random, towns: list[tuple[float, float]], kind: str = "errand_shopping") -> dict:
    lat, lon = place(rng, towns)
    return {
        "kind": kind,
        "location": {"lat": lat, "lon": lon},
        "priority": "normal",
        "vulnerability": [],
        "volunteers_needed": 1,
    }


def time_matches(deps: Deps, rng: random.Random, towns: list[tuple[float, float]], n: int) -> list[float]:
    """Milliseconds per match_need call, needs created by the intake function, follow-ups dropped."""
    principal = Principal(role=Role.DISPATCHER, token_id="bench")
    quiet = dataclasses.replace(deps, jobs=NullJobs())
    kinds = ["errand_shopping", "transport", "coal_hauling", "plumbing_repair"]
    samples = []
    for i in range(n):
        need = submit_need(deps=quiet, need_in=need_body(rng, towns, kinds[i % len(kinds)]), principal=principal)
        started = time.perf_counter()
        dispatch.match_need(deps=quiet, need_id=need.id)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def linear_scan_ms(deps: Deps, rng: random.Random, towns: list[tuple[float, float]], repeats: int) -> float:
    """One match by reading every volunteer and choosing in Python: what the GEO index avoids."""
    times = []
    ids = deps.store.volunteers.ids_range(start=0, count=deps.store.volunteers.count())
    for _ in range(repeats):
        lat, lon = place(rng, towns)
        started = time.perf_counter()
        candidates = []
        for start in range(0, len(ids), 10_000):
            pipe = deps.redis.pipeline(transaction=False)
            for vid in ids[start : start + 10_000]:
                pipe.hmget(
                    deps.store.keys.volunteer(vid), "lat", "lon", "skills", "on_duty", "load", "capacity", "idle_since"
                )
            for vid, row in zip(ids[start : start + 10_000], pipe.execute(), strict=True):
                candidates.append(
                    Candidate(
                        volunteer_id=vid,
                        location=Location(float(row[0]), float(row[1])),
                        skills=frozenset(row[2].decode().split(",")),
                        on_duty=row[3] == b"1",
                        load=int(row[4]),
                        capacity=int(row[5]),
                        idle_since=float(row[6]),
                    )
                )
        choose_volunteers(Requirement(Location(lat, lon), frozenset({"general"}), 10.0), candidates)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def noop() -> None:
    """The RQ floor: a job that does nothing."""


def run_workers(settings: Settings, processes: int) -> float:
    """Start match workers in burst mode; return when all have exited."""
    from worker.runner import Role as WorkerRole
    from worker.runner import work

    context = multiprocessing.get_context("fork")
    started = time.perf_counter()
    children = [
        context.Process(target=work, args=(WorkerRole(f"bench-{i}", jobs.MATCH_QUEUES), settings, True))
        for i in range(processes)
    ]
    for c in children:
        c.start()
    for c in children:
        c.join()
    return time.perf_counter() - started


def end_to_end_rate(
    deps: Deps, settings: Settings, rng: random.Random, towns: list[tuple[float, float]], processes: int, n: int
) -> tuple[float, float]:
    """(intake needs/s, needs/s from the workers' start to every need offered or escalated): the
    intake function with its real backlog and jobs, then real RQ worker processes (start-up included)."""
    principal = Principal(role=Role.DISPATCHER, token_id="bench")
    started = time.perf_counter()
    ids = [submit_need(deps=deps, need_in=need_body(rng, towns), principal=principal).id for _ in range(n)]
    intake = n / (time.perf_counter() - started)
    seconds = run_workers(settings, processes)
    done = sum(1 for need in deps.store.needs.get_many(ids) if need and need.status in ("offered", "escalated"))
    return intake, done / seconds


def burst_latency(
    deps: Deps, settings: Settings, rng: random.Random, towns: list[tuple[float, float]], n: int
) -> list[float]:
    """Seconds from each need's intake to its offer (or escalation), for a burst of `n` needs
    submitted at once while two worker processes run. Both times are read from the need's timeline
    (its `created` event and its first `offered` or `escalated` event): polling from here could only
    begin once the whole burst was submitted, and would count that wait as the workers'."""
    from worker.runner import Role as WorkerRole
    from worker.runner import work

    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=work, args=(WorkerRole(f"burst-{i}", jobs.MATCH_QUEUES), settings, False))
        for i in range(2)
    ]
    for w in workers:
        w.start()
    try:
        time.sleep(2.0)  # the workers are up and idle, as in production
        principal = Principal(role=Role.DISPATCHER, token_id="bench")
        intake: dict[str, float] = {}
        for _ in range(n):
            need_id = submit_need(deps=deps, need_in=need_body(rng, towns), principal=principal).id
            intake[need_id] = time.time()
        resolved: dict[str, float] = {}
        deadline = time.time() + 120
        while len(resolved) < n and time.time() < deadline:
            now = time.time()
            for need_id, (status, _) in deps.store.needs.holders(list(set(intake) - set(resolved))).items():
                if status in (NeedStatus.OFFERED, NeedStatus.ESCALATED, NeedStatus.ASSIGNED):
                    resolved[need_id] = now
            time.sleep(0.01)
        return [resolution_seconds(deps, need_id) if need_id in resolved else float("inf") for need_id in intake]
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.join(timeout=30)


def resolution_seconds(deps: Deps, need_id: str) -> float:
    """Seconds from the need's intake to its first offer or escalation, by its timeline."""
    events = deps.store.needs.events(need_id)
    created = next(e.at for e in events if e.type == EventType.CREATED)
    resolved = next(e.at for e in events if e.type in (EventType.OFFERED, EventType.ESCALATED))
    return (clock.parse(resolved) - clock.parse(created)).total_seconds()


def noop_rate(deps: Deps, settings: Settings, processes: int, n: int) -> float:
    from rq import Queue

    queue = Queue(jobs.DEFAULT, connection=deps.redis)
    with queue.connection.pipeline() as pipe:
        queue.enqueue_many([Queue.prepare_data("bench_matching.noop", result_ttl=60) for _ in range(n)], pipeline=pipe)
        pipe.execute()
    return n / run_workers(settings, processes)


def memory_per_volunteer(client: redis.Redis, before: int) -> float:
    """Memory added per volunteer, measured once the loading connection's buffers are gone."""
    client.connection_pool.disconnect()
    time.sleep(1.5)
    return (int(client.info("memory")["used_memory"]) - before) / max(int(client.llen("aidline:vols")), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--matches", type=int, default=300, help="timed matches per size")
    parser.add_argument("--e2e-needs", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3, help="end-to-end and no-op runs; the median counts")
    parser.add_argument("--burst", type=int, default=1000, help="needs submitted at once for the latency figure")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is not installed")
    os.environ.setdefault("AIDLINE_LOG_LEVEL", "WARNING")
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            process, port = start_redis(Path(tmp))
            try:
                rows.append(bench_size(size, port, args))
            finally:
                process.terminate()
                process.wait()
        print_table(rows, final=False)
    print_table(rows, final=True)


def bench_size(size: int, port: int, args: argparse.Namespace) -> dict:
    rng = random.Random(size)
    towns = town_centres(rng)
    settings = Settings.from_env({}, redis_url=f"redis://127.0.0.1:{port}/0")
    os.environ["REDIS_URL"] = settings.redis_url
    deps = bootstrap(settings)
    before = int(deps.redis.info("memory")["used_memory"])
    load_seconds = load_volunteers(deps, size, rng, towns)
    memory = memory_per_volunteer(deps.redis, before)
    samples = time_matches(deps, rng, towns, args.matches)
    scan = linear_scan_ms(deps, rng, towns, repeats=1 if size >= 1_000_000 else 3)
    row = {
        "size": size,
        "load_per_s": size / load_seconds,
        "p50": statistics.median(samples),
        "p99": statistics.quantiles(samples, n=100)[98],
        "scan": scan,
        "memory": memory,
    }
    for processes in (1, 2):
        # interleaved, median of `repeats` each, so both see the same machine
        e2e, noop, intake = [], [], []
        for _ in range(args.repeats):
            deps.store.clear_activity()
            rate_in, rate = end_to_end_rate(deps, settings, rng, towns, processes, args.e2e_needs)
            intake.append(rate_in)
            e2e.append(rate)
            noop.append(noop_rate(deps, settings, processes, args.e2e_needs))
        row[f"e2e{processes}"], row[f"noop{processes}"] = statistics.median(e2e), statistics.median(noop)
        row[f"intake{processes}"] = statistics.median(intake)
    deps.store.clear_activity()
    waits = burst_latency(deps, settings, rng, towns, args.burst)
    row["burst_p99"] = statistics.quantiles(waits, n=100)[98]
    row["burst_max"] = max(waits)
    return row


def print_table(rows: list[dict], *, final: bool) -> None:
    out = sys.stdout if final else sys.stderr
    print(
        "\n| volunteers | match p50 | match p99 | linear scan | intake needs/s | e2e needs/s (1 / 2 workers) "
        "| RQ no-op jobs/s (1 / 2) | burst of 1,000: intake to offer p99 (max) | Redis bytes per volunteer |",
        file=out,
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|", file=out)
    for r in rows:
        print(
            f"| {r['size']:,} | {r['p50']:.2f} ms | {r['p99']:.2f} ms | {r['scan']:.0f} ms | {r['intake2']:,.0f} "
            f"| {r['e2e1']:,.0f} / {r['e2e2']:,.0f} | {r['noop1']:.0f} / {r['noop2']:.0f} "
            f"| {r['burst_p99']:.2f} s ({r['burst_max']:.2f} s) | {r['memory']:.0f} |",
            file=out,
        )
    if final and rows:
        first, last = rows[0], rows[-1]
        print(
            f"\nmatch p50 at {last['size']:,} is {last['p50'] / first['p50']:.2f}x the p50 at {first['size']:,}",
            file=out,
        )


if __name__ == "__main__":
    main()
