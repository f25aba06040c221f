"""Reports benchmark: a year of rollups for a million needs, then the summary for that year by each grouping.

Starts a private redis-server (AOF `everysec`, as production), fills 365 days of rollups through the rollup
store's own writes (`RollupStore.queue_add` and `queue_add_volunteers`, pipelined a day at a time): a
million needs over 3 grids and 12 kinds, each received, most resolved and rated, some escalated, deferred or
reopened, with times from intake to first offer, acceptance and done drawn per need into their buckets, and
300 volunteers in 10 teams serving them. Then times `reports.summary` over the whole year for each group_by,
and the same through the HTTP API (in-process test client, JSON out), several runs each.

Run with `make bench-reports` (or `python bench/bench_reports.py --needs 1000000 --runs 5`). Not a test:
nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import redis

from service import create_app, reports, volunteers
from service.bootstrap import bootstrap
from service.cli import create_token
from service.config import Settings
from service.deps import Deps
from service.launcher import redis_command
from service.models import Principal, ReportGroup, Role
from service.store.rollups import ATTENTION_LEVELS, PER_DOUBLING, cell, week_of

GRIDS = ["grid-1", "grid-2", "grid-3"]
KINDS = [
    "water_delivery",
    "coal_hauling",
    "plumbing_repair",
    "heating_repair",
    "electrical_repair",
    "home_cleaning",
    "errand_shopping",
    "medicine_pickup",
    "meal_delivery",
    "mail_and_bills",
    "transport",
    "companionship_visit",
]
VOLUNTEERS = 300
TEAMS = 10
OPS = Principal(role=Role.OPS, token_id="bench")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def buckets(seconds: np.ndarray) -> dict[int, int]:
    """How many of the durations fall in each bucket (as service.store.rollups.duration_bucket puts them)."""
    index = np.where(seconds < 1, 0, np.floor(PER_DOUBLING * np.log(np.maximum(seconds, 1)) / np.log(2)) + 1)
    values, counts = np.unique(index.astype(int), return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts, strict=True)}


def one_cell(rng: np.random.Generator, n: int) -> dict[str, int]:
    """The figures of n needs of one day, grid and kind."""
    resolved = int(rng.binomial(n, 0.935))
    timed = int(rng.binomial(resolved, 0.9))
    rated = int(rng.binomial(resolved, 0.6))
    ratings = rng.choice([1, 2, 3, 4, 5], size=rated, p=[0.01, 0.01, 0.03, 0.2, 0.75])
    figures = {
        "received": n,
        "resolved": resolved,
        "timed": timed,
        "on_time": int(rng.binomial(timed, 0.92)),
        "rated": rated,
        "rating_sum": int(ratings.sum()),
        "rated_good": int((ratings >= 4).sum()),
        "escalated": int(rng.binomial(n, 0.05)),
        "deferred": int(rng.binomial(n, 0.02)),
        "reopened": int(rng.binomial(n, 0.01)),
    }
    for name, median, sigma, count in [
        ("to_offer", 20.0, 1.0, n),
        ("to_accept", 300.0, 1.2, resolved),
        ("to_done", 7200.0, 1.0, resolved),
    ]:
        for bucket, amount in buckets(rng.lognormal(np.log(median), sigma, size=count)).items():
            figures[f"{name}:{bucket}"] = amount
    tasks = resolved
    figures["tasks"] = tasks
    figures["service_s"] = int(rng.lognormal(np.log(3600), 0.8, size=tasks).sum())
    return figures


def fill(deps: Deps, *, needs: int, start: date, days: int, seed: int, volunteer_ids: list[str]) -> None:
    """A year of rollups for `needs` needs, written through the rollup store a day at a time."""
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(len(GRIDS) * len(KINDS)) * 2)
    per_day = rng.multinomial(needs, np.ones(days) / days)
    rollups = deps.store.rollups
    for offset, count in enumerate(per_day):
        day = start + timedelta(days=offset)
        period = {"day": day.isoformat(), "week": week_of(day)}
        pipe = deps.redis.pipeline(transaction=False)
        served: dict[str, int] = defaultdict(int)
        for index, n in enumerate(rng.multinomial(count, weights)):
            if not n:
                continue
            grid, kind = GRIDS[index // len(KINDS)], KINDS[index % len(KINDS)]
            figures = one_cell(rng, int(n))
            rollups.queue_add(pipe, **period, figures={f"{cell(grid, kind)}|{k}": v for k, v in figures.items()})
            served["tasks"] += figures["tasks"]
            served["service_s"] += figures["service_s"]
        for grid in GRIDS:  # household visits
            for level, due in zip(ATTENTION_LEVELS, (4, 6, 8, 3), strict=True):
                done = int(rng.binomial(due, 0.9))
                visits = {
                    f"visits:{level}:due": due,
                    f"visits:{level}:done": done,
                    f"visits:{level}:overdue": due - done,
                }
                figures = {f"{cell(grid, 'companionship_visit')}|{k}": v for k, v in visits.items()}
                rollups.queue_add(pipe, **period, figures=figures)
        share = rng.multinomial(served["tasks"], np.ones(len(volunteer_ids)) / len(volunteer_ids))
        seconds = served["service_s"] / max(served["tasks"], 1)
        served_by: dict[str, int] = {}
        for volunteer_id, tasks in zip(volunteer_ids, share, strict=True):
            if tasks:
                served_by[f"{volunteer_id}|tasks"] = int(tasks)
                served_by[f"{volunteer_id}|service_s"] = int(tasks * seconds)
        rollups.queue_add_volunteers(pipe, **period, figures=served_by)
        pipe.execute()


def register_volunteers(deps: Deps) -> list[str]:
    """The volunteers who serve the needs, registered as any volunteer is."""
    return [
        volunteers.register_volunteer(
            deps=deps,
            volunteer_in={
                "name": f"志愿者{v}",
                "phone": f"+86138{v:08d}",
                "skills": ["general"],
                "location": {"lat": 46.33, "lon": 132.21},
                "capacity": 2,
                "on_duty": True,
                "channels": [],
                "locale": "zh",
                "team": f"team-{v % TEAMS}",
            },
        ).id
        for v in range(VOLUNTEERS)
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--needs", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed (make install installs it)")
    end = date(2026, 11, 29)
    start = end - timedelta(days=args.days - 1)
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = subprocess.Popen(redis_command(port, Path(tmp)), stdout=subprocess.DEVNULL)
        try:
            client = redis.Redis(port=port)
            for _ in range(200):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            settings = Settings.from_env({}, redis_url=f"redis://127.0.0.1:{port}/0", rate_limits=False)
            deps = bootstrap(settings, connection=client)
            began = time.perf_counter()
            ids = register_volunteers(deps)
            fill(deps, needs=args.needs, start=start, days=args.days, seed=args.seed, volunteer_ids=ids)
            filled = time.perf_counter() - began
            memory = client.info("memory")["used_memory_human"]
            print(f"filled {args.days} days of rollups for {args.needs:,} needs in {filled:.1f} s; Redis uses {memory}")
            app = create_app({"TESTING": True, "SETTINGS": settings, "DEPS": deps})
            headers = {"Authorization": f"Bearer {create_token(deps.store, Role.OPS, None)}"}
            http = app.test_client()
            print(f"summary of {start} .. {end}, {args.runs} runs each (median / slowest, ms):")
            print(f"{'group_by':<10} {'rows':>5} {'summary()':>16} {'GET (JSON)':>16} {'GET (CSV)':>16}")
            for group in [None, *ReportGroup]:
                domain, api, csv = [], [], []
                rows = 0
                for _ in range(args.runs):
                    t = time.perf_counter()
                    report = reports.summary(deps=deps, principal=OPS, date_from=start, date_to=end, group_by=group)
                    domain.append(time.perf_counter() - t)
                    rows = len(report.groups)
                    query = {"from": start.isoformat(), "to": end.isoformat(), **({"group_by": group} if group else {})}
                    for times, extra in ((api, {}), (csv, {"format": "csv"})):
                        t = time.perf_counter()
                        response = http.get("/api/v1/reports/summary", query_string={**query, **extra}, headers=headers)
                        times.append(time.perf_counter() - t)
                        assert response.status_code == 200, response.get_data(as_text=True)
                assert report.totals["received"] == args.needs
                print(f"{group or '(totals)':<10} {rows:>5} " + " ".join(f"{_ms(t):>16}" for t in (domain, api, csv)))
        finally:
            server.terminate()
            server.wait(timeout=30)
    sys.stdout.flush()


def _ms(times: list[float]) -> str:
    return f"{statistics.median(times) * 1000:.0f} / {max(times) * 1000:.0f}"


if __name__ == "__main__":
    main()
