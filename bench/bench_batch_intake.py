"""Bulk intake benchmark: 10,000 needs through POST /api/v1/needs/batch (20 requests of 500) against the API
under gunicorn, as `aidline run` starts it, and a private redis-server with the production settings, both
started here.

Run with `make bench-intake` (or `python bench/bench_batch_intake.py --needs 10000 --batch 500`). Prints needs
per second and each request's time; `--profile` adds where one batch's time goes in-process (the schema and
the domain function, under cProfile). Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import json
import os
import pstats
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis

from service.api.schemas import NeedBatchSchema
from service.bootstrap import bootstrap
from service.cli import create_token
from service.config import Settings
from service.deps import Deps
from service.launcher import gunicorn_command, redis_command
from service.models import Principal, Role
from service.needs import submit_needs

KINDS = ["water_delivery", "coal_hauling", "medicine_pickup", "meal_delivery", "errand_shopping", "transport"]
PRIORITIES = ["critical", "high", "normal", "normal", "normal", "low"]
VULNERABILITY = [[], [], [], ["elderly_alone"], ["disabled"], ["child", "medical"]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(ready: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start within {timeout:.0f} s")
        time.sleep(0.05)


def redis_up(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port).ping())
    except redis.ConnectionError:
        return False


def api_up(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False


def need(rng: random.Random, i: int) -> dict[str, Any]:
    """A hotline's record: a place in a district, a kind, who asks and why."""
    return {
        "kind": rng.choice(KINDS),
        "location": {"lat": round(rng.uniform(46.0, 46.6), 5), "lon": round(rng.uniform(131.9, 132.5), 5)},
        "address": f"Station {rng.randint(1, 12)}, house {rng.randint(1, 400)}",
        "priority": rng.choice(PRIORITIES),
        "vulnerability": rng.choice(VULNERABILITY),
        "volunteers_needed": rng.choice([1, 1, 1, 2]),
        "description": f"Call {i}: no water since the pump failed, two people in the house",
        "requester": {"name": "Zhang", "phone": f"+86139{i:08d}", "locale": "zh"},
    }


def bodies(count: int, size: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    needs = [need(rng, i) for i in range(count)]
    return [json.dumps({"needs": needs[i : i + size]}).encode() for i in range(0, count, size)]


def post_all(
    port: int, token: str, batches: list[bytes], clients: int, path: str = "/api/v1/needs/batch"
) -> tuple[float, list[float], list[int]]:
    """Send every body from `clients` connections at once; wall time, each request's seconds, each status."""
    times: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()
    queue = list(enumerate(batches))

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        while True:
            with lock:
                if not queue:
                    return
                _, body = queue.pop(0)
            started = time.perf_counter()
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            took = time.perf_counter() - started
            with lock:
                times.append(took)
                statuses.append(response.status)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, times, statuses


def profile_batch(deps: Deps, body: bytes, top: int) -> None:
    """One batch in-process, the schema and the domain function, under cProfile."""
    principal = Principal(role=Role.INTAKE, token_id="bench")
    schema = NeedBatchSchema()
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    loaded = schema.load(json.loads(body))
    after_schema = time.perf_counter()
    submit_needs(deps=deps, needs_in=loaded["needs"], principal=principal)
    profiler.disable()
    done = time.perf_counter()
    print(
        f"\none batch of {len(loaded['needs'])} in-process: schema {1000 * (after_schema - started):.0f} ms, "
        f"submit_needs {1000 * (done - after_schema):.0f} ms (under the profiler)"
    )
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--needs", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500, help="needs per request (at most 500)")
    parser.add_argument("--clients", type=int, default=2, help="connections sending batches at once")
    parser.add_argument("--repeats", type=int, default=3, help="runs on an emptied Redis; the median counts")
    parser.add_argument("--single", type=int, default=2000, help="needs sent one per request, for comparison")
    parser.add_argument("--profile", action="store_true", help="also profile one batch in-process")
    args = parser.parse_args()

    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed (make install installs it)")
    gunicorn = Path(sys.executable).parent / "gunicorn"
    with tempfile.TemporaryDirectory(prefix="aidline-bench-intake-") as directory:
        redis_port, api_port = free_port(), free_port()
        redis_process = subprocess.Popen(redis_command(redis_port, Path(directory)), stdout=subprocess.DEVNULL)
        api_process: subprocess.Popen[bytes] | None = None
        api_log = (Path(directory) / "api.log").open("wb")
        try:
            wait_until(lambda: redis_up(redis_port), "redis-server")
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
            env = {k: v for k, v in os.environ.items() if not k.startswith("AIDLINE_")}
            env.update({"REDIS_URL": redis_url, "AIDLINE_LOG_LEVEL": "WARNING"})
            api_process = subprocess.Popen(
                gunicorn_command(str(gunicorn), api_port), env=env, stdout=api_log, stderr=subprocess.STDOUT
            )
            wait_until(lambda: api_up(api_port), "the API under gunicorn")
            settings = Settings.from_env({}, redis_url=redis_url)
            deps = bootstrap(settings)
            batches = bodies(args.needs, args.batch, seed=1)
            print(
                f"{args.needs} needs in {len(batches)} requests of {args.batch} "
                f"({sum(map(len, batches)) // len(batches) // 1024} KB each), {args.clients} clients, "
                "gunicorn 2 workers x 4 threads, no match workers running"
            )
            rates = []
            for run in range(args.repeats):
                deps.redis.flushdb()
                token = create_token(deps.store, Role.INTAKE, None)
                wall, times, statuses = post_all(api_port, token, batches, args.clients)
                stored = sum(deps.store.needs.count_by_status().values())
                rates.append(args.needs / wall)
                print(
                    f"run {run + 1}: {wall:.2f} s, {args.needs / wall:,.0f} needs/s; per request p50 "
                    f"{1000 * statistics.median(times):.0f} ms, max {1000 * max(times):.0f} ms; "
                    f"answers {sorted(set(statuses))}; needs stored {stored}"
                )
                if set(statuses) != {201} or stored != args.needs:
                    print((Path(directory) / "api.log").read_text(errors="replace")[-3000:], file=sys.stderr)
                    raise SystemExit("not every batch was created (the API's log is above)")
            median = statistics.median(rates)
            print(f"\nmedian: {args.needs / median:.2f} s for {args.needs} needs, {median:,.0f} needs/s")
            if args.single:
                deps.redis.flushdb()
                token = create_token(deps.store, Role.INTAKE, None)
                rng = random.Random(2)
                singles = [json.dumps(need(rng, i)).encode() for i in range(args.single)]
                wall, times, statuses = post_all(api_port, token, singles, args.clients, path="/api/v1/needs")
                print(
                    f"one per request (POST /api/v1/needs): {args.single} needs in {wall:.2f} s, "
                    f"{args.single / wall:,.0f} needs/s; per request p50 {1000 * statistics.median(times):.1f} ms; "
                    f"answers {sorted(set(statuses))}"
                )
            if args.profile:
                deps.redis.flushdb()
                profile_batch(deps, batches[0], top=25)
        finally:
            if api_process is not None:
                api_process.terminate()
                api_process.wait(timeout=30)
            api_log.close()
            redis_process.terminate()
            redis_process.wait(timeout=30)


if __name__ == "__main__":
    main()
