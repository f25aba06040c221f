"""`aidline run` (what `make run` starts): a private Redis with AOF, workers, the API, demo data.

Each test starts `aidline run` in its own session and stops only what it started: the launcher
by its process group, anything left by process id, and only processes whose working directory
is the test's own folder (every child of the launcher inherits it).
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from rq import Worker

from service import cli
from service import demo as demo_data
from tests.e2e.conftest import Background, Http, RedisServer, bin_path, free_port, listening, process_env, wait_for

pytestmark = pytest.mark.slow

STARTED = re.compile(r"aidline run: (?P<name>.+) started \(pid (?P<pid>\d+)\)")


def proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state, ppid, pgrp, ...); None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def running(pid: int) -> bool:
    """Whether a process exists and is not a zombie (an orphan nobody reaped is dead all the same)."""
    fields = proc_stat(pid)
    return fields is not None and fields[0] != "Z"


def children_of(pid: int) -> set[int]:
    """The direct children of a process, from /proc/<pid>/task/*/children."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.update(int(child) for child in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def group_members(pgid: int) -> list[int]:
    """Running processes in one process group."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = proc_stat(int(entry.name))
            if fields is not None and fields[0] != "Z" and int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


def processes_in(directory: Path) -> list[int]:
    """Running processes whose working directory is inside `directory` (this process aside)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if cwd.is_relative_to(directory) and running(int(entry.name)):
            found.append(int(entry.name))
    return found


def registered_worker_pids(redis_url: str) -> set[int]:
    """The pids of the RQ workers registered in one Redis."""
    return {w.pid for w in Worker.all(connection=redis.Redis.from_url(redis_url)) if w.pid}


class Launcher:
    """`aidline run` in its own session, as a terminal would run it, with its output collected."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.redis_port = free_port()
        env = process_env("unused")
        env.pop("REDIS_URL")
        self.process = subprocess.Popen(
            [bin_path("aidline"), "run", "--port", str(self.port), "--redis-port", str(self.redis_port)]
            + ["--var", "var"],
            cwd=directory,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self.read_output, daemon=True)
        self.reader.start()

    def read_output(self) -> None:
        """Collect the launcher's output (stdout and stderr) line by line until it closes."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_output(self, text: str, timeout: float = 90) -> None:
        """Wait until the output contains `text`; fail with the output so far if the launcher exits first."""
        wait_for(lambda: text in self.output() or self.process.poll() is not None, timeout=timeout, what=repr(text))
        assert text in self.output(), self.output()

    def started(self, name: str) -> list[int]:
        """The pids of every start of one child (e.g. `worker supervisor`), oldest first."""
        return [int(m["pid"]) for m in STARTED.finditer(self.output()) if m["name"] == name]

    def wait_until_ready(self, timeout: float = 90) -> None:
        """Wait for /readyz to answer 200 (Redis and a live worker); fail with the output if it does not."""
        http = Http(self.port)
        deadline = time.monotonic() + timeout
        while http.get("/readyz").status != 200:
            if time.monotonic() > deadline or self.process.poll() is not None:
                pytest.fail(f"not ready after {timeout:.0f}s:\n{self.output()}")
            time.sleep(0.2)

    def ctrl_c(self) -> None:
        """What Ctrl-C in a terminal does: SIGINT to the foreground process group (the launcher's)."""
        os.killpg(self.process.pid, signal.SIGINT)

    def assert_everything_stopped(self, *, timeout: float = 90, returncode: int = 0) -> None:
        """The launcher exits, its ports are free and no process of this test is left."""
        assert self.process.wait(timeout=timeout) == returncode, self.output()
        self.reader.join(timeout=10)
        assert not listening(self.port), f"port {self.port} still in use:\n{self.output()}"
        assert not listening(self.redis_port), f"port {self.redis_port} still in use:\n{self.output()}"
        wait_for(lambda: not processes_in(self.directory), timeout=30, what=f"no process left:\n{self.output()}")

    def close(self) -> None:
        """Stop what is left, by process group and process id, never by name."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)  # the launcher's session: the launcher alone
            self.process.wait(timeout=10)
        deadline = time.monotonic() + 30
        while left := processes_in(self.directory):
            if time.monotonic() > deadline:
                pytest.fail(f"could not stop {left}")
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    """`aidline run` started in this test's folder, up and ready; everything it started is gone after the test."""
    started = Launcher(tmp_path)
    try:
        started.wait_for_output("Press Ctrl-C to stop.")
        started.wait_until_ready()
        yield started
    finally:
        started.close()


def redis_answers(port: int) -> bool:
    """Whether the Redis on this port answers PING."""
    try:
        return bool(redis.Redis(port=port, socket_timeout=5).ping())
    except redis.ConnectionError:
        return False


def workers_forked_by(supervisor: int, redis_port: int) -> set[int]:
    """Registered RQ workers that are children of one worker supervisor."""
    return registered_worker_pids(f"redis://127.0.0.1:{redis_port}/0") & children_of(supervisor)


def test_run_starts_everything_in_a_relative_var_folder_and_ctrl_c_stops_it_all(launcher: Launcher) -> None:
    var = launcher.directory / "var"
    assert "DISPATCHER_TOKEN=" in launcher.output()
    assert Http(launcher.port).get("/healthz").status == 200
    assert f"export REDIS_URL=redis://127.0.0.1:{launcher.redis_port}/0" in (var / "demo-tokens.env").read_text()
    demo_tokens = dict(
        line.removeprefix("export ").split("=", 1) for line in (var / "demo-tokens.env").read_text().splitlines()
    )
    assert f"CAPTAIN_TOKEN={demo_tokens['CAPTAIN_TOKEN']}" in launcher.output(), "printed beside the other tokens"
    sms = {"from": cli.demo_volunteers()[0]["phone"], "body": "YES 0000"}
    unknown_code = Http(launcher.port).request(
        "POST", "/api/v1/inbound/sms", sms, headers={"X-Aidline-Secret": demo_tokens["AIDLINE_INBOUND_SMS_SECRET"]}
    )
    assert unknown_code.status == 404, "the demo's SMS secret is the one the API takes: only the code is unknown"
    assert Http(launcher.port).request("POST", "/api/v1/inbound/sms", sms).status == 403
    demo_captain = demo_data.demo_captain()
    captain = Http(launcher.port, demo_tokens["CAPTAIN_TOKEN"])
    theirs = captain.get("/api/v1/households")
    assert theirs.status == 200
    assert theirs.json["items"], "the demo households of their grid"
    assert {h["grid"] for h in theirs.json["items"]} == {demo_captain.grid}, "their grid's only"
    everyone = Http(launcher.port, demo_tokens["DISPATCHER_TOKEN"]).get("/api/v1/households").json["items"]
    assert len({h["attention_level"] for h in everyone}) > 2 and len({h["grid"] for h in everyone}) > 1
    on_call = captain.get(f"/api/v1/grids/{demo_captain.grid}/on-call").json
    assert on_call["volunteer_id"] == demo_captain.volunteer_id, "the demo captain is on call for their grid"
    assert redis.Redis(port=launcher.redis_port).config_get("appendonly") == {"appendonly": "yes"}
    assert (var / "redis").is_dir()
    children = [pid for name in ("Redis", "worker supervisor", "API (gunicorn)") for pid in launcher.started(name)]
    assert len(children) == 3, launcher.output()
    for pid in children:
        assert os.getsid(pid) == pid, "every child runs in its own session, out of reach of the terminal"

    launcher.ctrl_c()

    launcher.assert_everything_stopped()
    assert "aidline run: stopped" in launcher.output()


def test_a_killed_worker_supervisor_is_restarted_while_the_api_and_redis_keep_serving(launcher: Launcher) -> None:
    http = Http(launcher.port)
    [supervisor] = launcher.started("worker supervisor")
    wait_for(lambda: workers_forked_by(supervisor, launcher.redis_port), timeout=60, what="the first workers")

    os.kill(supervisor, signal.SIGKILL)

    launcher.wait_for_output(f"worker supervisor (pid {supervisor}) exited with exit code -9 (SIGKILL)")
    wait_for(lambda: group_members(supervisor) == [], timeout=30, what="the dead supervisor's workers gone")
    assert http.get("/healthz").status == 200
    assert redis_answers(launcher.redis_port)
    wait_for(lambda: len(launcher.started("worker supervisor")) == 2, timeout=60, what="a new worker supervisor")
    replacement = launcher.started("worker supervisor")[1]
    wait_for(lambda: workers_forked_by(replacement, launcher.redis_port), timeout=90, what="the new workers")
    launcher.wait_until_ready()
    assert launcher.process.poll() is None

    launcher.ctrl_c()

    launcher.assert_everything_stopped()


def test_a_killed_api_is_restarted_and_its_orphaned_workers_do_not_keep_the_port(launcher: Launcher) -> None:
    [api] = launcher.started("API (gunicorn)")
    api_workers = children_of(api)
    assert api_workers

    os.kill(api, signal.SIGKILL)  # its workers are orphaned, still holding the port

    launcher.wait_for_output(f"API (gunicorn) (pid {api}) exited with exit code -9 (SIGKILL)")
    wait_for(lambda: not any(running(pid) for pid in api_workers), timeout=30, what="the orphaned API workers gone")
    assert redis_answers(launcher.redis_port)
    wait_for(lambda: len(launcher.started("API (gunicorn)")) == 2, timeout=60, what="a new API")
    wait_for(lambda: listening(launcher.port), timeout=60, what="the API listening again")
    assert Http(launcher.port).get("/healthz").status == 200

    launcher.ctrl_c()

    launcher.assert_everything_stopped()


def test_redis_dying_stops_everything_with_a_clear_message(launcher: Launcher) -> None:
    [redis_pid] = launcher.started("Redis")

    os.kill(redis_pid, signal.SIGKILL)

    launcher.assert_everything_stopped(returncode=1)
    assert f"Redis (pid {redis_pid}) stopped with exit code -9 (SIGKILL)" in launcher.output()
    assert "redis.log" in launcher.output()


def test_sigterm_stops_everything(launcher: Launcher) -> None:
    launcher.process.send_signal(signal.SIGTERM)

    launcher.assert_everything_stopped()


def test_ctrl_c_stops_everything_on_a_busy_machine_with_requests_in_flight(launcher: Launcher) -> None:
    burners = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(os.cpu_count() or 2)]
    done = threading.Event()
    answered: list[int] = []

    def ask() -> None:
        """Keep requests going until the API is gone."""
        while not done.is_set():
            try:
                answered.append(Http(launcher.port).get("/readyz").status)
            except (OSError, http.client.HTTPException):
                return

    clients = [threading.Thread(target=ask, daemon=True) for _ in range(4)]
    try:
        for client in clients:
            client.start()
        wait_for(lambda: len(answered) >= 8, timeout=60, what="requests in flight")

        launcher.ctrl_c()

        launcher.assert_everything_stopped(timeout=120)
    finally:
        done.set()
        for burner in burners:
            burner.kill()
            burner.wait()
        for client in clients:
            client.join(timeout=40)


def test_everything_stops_by_itself_when_the_launcher_is_killed(launcher: Launcher) -> None:
    os.killpg(launcher.process.pid, signal.SIGKILL)  # no clean-up runs in the launcher

    assert launcher.process.wait(timeout=10) == -signal.SIGKILL
    wait_for(lambda: not processes_in(launcher.directory), timeout=90, what="every child stopped")
    assert not listening(launcher.port)
    assert not listening(launcher.redis_port)


# `aidline worker` as `aidline run` starts it, alone in its session: SIGTERM stops it and all it forked.
WORKER_ARGS = ["worker", "--processes", "2", "--notify-processes", "1"]


def workers_of(supervisor: Background, server: RedisServer) -> set[int]:
    """The registered RQ workers that one supervisor forked."""
    return registered_worker_pids(server.url) & children_of(supervisor.pid)


def test_sigterm_stops_the_worker_supervisor_and_every_worker_it_forked(
    private_redis: RedisServer, spawn: Callable[..., Background]
) -> None:
    supervisor = spawn([bin_path("aidline"), *WORKER_ARGS], process_env(private_redis.url), "worker")
    wait_for(lambda: len(workers_of(supervisor, private_redis)) == 3, timeout=90, what="three registered workers")
    workers = workers_of(supervisor, private_redis)

    supervisor.process.send_signal(signal.SIGTERM)

    assert supervisor.process.wait(timeout=60) == 0, supervisor.output()
    wait_for(lambda: not any(running(pid) for pid in workers), timeout=30, what="the workers stopped")
    wait_for(lambda: not group_members(supervisor.pid), timeout=30, what="nothing left in the supervisor's group")


def test_sigterm_right_after_start_stops_workers_still_starting(
    private_redis: RedisServer, spawn: Callable[..., Background]
) -> None:
    supervisor = spawn([bin_path("aidline"), *WORKER_ARGS], process_env(private_redis.url), "worker")
    wait_for(lambda: "started (pid" in supervisor.output(), timeout=60, what="the supervisor started")

    supervisor.process.send_signal(signal.SIGTERM)

    assert supervisor.process.wait(timeout=60) == 0, supervisor.output()
    wait_for(lambda: not group_members(supervisor.pid), timeout=30, what="nothing left in the supervisor's group")
