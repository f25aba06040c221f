"""Roster import benchmark: `aidline import volunteers` and `aidline import households` on files of 10,000 rows,
run as a shell user runs them (a new process each time, its start included) against a private redis-server with
the production settings.

For each kind, four runs on the same Redis: the first import (every row created), the same file again (every row
unchanged), the file with every row changed (every row updated), and the export. Run with `make bench-import` (or
`python bench/bench_import.py --rows 10000`). Prints each run's wall time and rows per second. Not a test: nothing
here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from service.launcher import redis_command

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = ["金凤", "建国", "秀英", "志强", "丽", "军", "敏", "静", "磊", "洋", "艳", "勇", "杰", "娟", "涛"]
SKILLS = ["plumbing", "driving", "heavy_lifting", "electrical", "heating", "cooking", "medical", "tutoring"]
HEADER = "name,phone,skills,lat,lon,capacity,team,grid,locale,channels"
HOUSEHOLD_HEADER = "address,lat,lon,grid,vulnerability,contact_name,contact_phone,attention_level,notes"
LEVELS = ["red", "orange", "orange", "yellow", "yellow", "yellow", "green", "green"]
VULNERABILITIES = ["elderly_alone", "disabled", "child", "livestock", "medical"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def roster(rows: int, seed: int, *, changed: bool = False) -> str:
    """A district's volunteers: Chinese names, 1 to 3 skills, homes spread over the district, some channels."""
    rng = random.Random(seed)
    lines = [HEADER]
    for i in range(rows):
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + ("（队长）" if changed else "")
        skills = ";".join(rng.sample(SKILLS, rng.randint(1, 3)))
        lat, lon = round(rng.uniform(46.0, 46.6), 5), round(rng.uniform(131.9, 132.5), 5)
        capacity = rng.randint(1, 3) + (1 if changed else 0)
        channel = rng.choice(["", "", f"ntfy://ntfy.sh/aidline-{i}", f"json://hooks.example.org/v/{i}"])
        lines.append(f"{name},+86138{i:08d},{skills},{lat},{lon},{capacity},team-{i % 14},grid-{i % 30},zh,{channel}")
    return "\n".join(lines) + "\n"


def households(rows: int, seed: int, *, changed: bool = False) -> str:
    """A district's care register: addresses, 0 to 2 vulnerabilities, levels weighted towards yellow and green."""
    rng = random.Random(seed)
    lines = [HOUSEHOLD_HEADER]
    for i in range(rows):
        lat, lon = round(rng.uniform(46.0, 46.6), 5), round(rng.uniform(131.9, 132.5), 5)
        vulnerability = ";".join(rng.sample(VULNERABILITIES, rng.randint(0, 2)))
        contact = rng.choice(SURNAMES) + rng.choice(GIVEN)
        level = rng.choice(LEVELS)
        if changed:
            level = LEVELS[(LEVELS.index(level) + 3) % len(LEVELS)]
        notes = "独居，听力不好" if changed else ""
        lines.append(
            f"{i % 12 + 1}站{i // 12 + 1}号,{lat},{lon},grid-{i % 30},{vulnerability},{contact},"
            f"+86139{i:08d},{level},{notes}"
        )
    return "\n".join(lines) + "\n"


def aidline(env: dict[str, str], *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", "from service.cli import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"aidline {' '.join(args)} failed:\n{done.stderr}")
    return took, done.stdout.strip() or done.stderr.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        server = subprocess.Popen(redis_command(port, workdir), stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if redis.Redis(port=port).ping():
                        break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise SystemExit("redis-server did not start") from None
                    time.sleep(0.05)
            root = str(Path(__file__).resolve().parents[1])  # this checkout's code, whatever is installed
            path = os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])
            env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{port}/0", "PYTHONPATH": path}
            print(f"{options.rows} rows, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
            print(f"{'run':<44} {'seconds':>8} {'rows/s':>8}  answer")
            for kind, make in (("volunteers", roster), ("households", households)):
                first = workdir / f"{kind}.csv"
                first.write_text(make(options.rows, options.seed), encoding="utf-8-sig")
                changed = workdir / f"{kind}-changed.csv"
                changed.write_text(make(options.rows, options.seed, changed=True), encoding="utf-8-sig")
                runs = [
                    ("import, every row new", ("import", kind, str(first))),
                    ("import again, nothing changed", ("import", kind, str(first))),
                    ("import, every row changed", ("import", kind, str(changed))),
                    ("export", ("export", kind, "-o", str(workdir / f"{kind}-export.csv"))),
                ]
                for title, args in runs:
                    took, answer = aidline(env, *args)
                    print(f"{kind + ': ' + title:<44} {took:>8.2f} {options.rows / took:>8.0f}  {answer}")
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
