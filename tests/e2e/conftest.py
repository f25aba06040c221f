"""Helpers for tests that run Aidline as real processes: the console scripts, a small HTTP client,
background processes that are always stopped, and a private redis-server per test module."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from service.deps import Deps
from tests.conftest import RedisServer, free_port

__all__ = ["RedisServer", "free_port"]

BIN = Path(sys.executable).parent


def bin_path(name: str) -> str:
    """A console script installed next to the running interpreter (aidline, gunicorn)."""
    path = BIN / name
    assert path.exists(), f"{name} is not installed in {BIN}"
    return str(path)


def process_env(redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of an Aidline process pointed at one Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIDLINE_")}
    env.update(
        {
            "REDIS_URL": redis_url,
            "AIDLINE_PUBLIC_URL": "http://aid.test",
            "AIDLINE_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def aidline(*args: str, env: dict[str, str], check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run one `aidline` command to completion and return its output."""
    done = subprocess.run(
        [bin_path("aidline"), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check:
        assert done.returncode == 0, f"aidline {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
    return done


def wait_for(predicate: Callable[[], Any], *, timeout: float, interval: float = 0.1, what: str = "condition") -> Any:
    """Poll until predicate() returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Background:
    """A long-running process in its own session (so its children can be stopped with it)."""

    args: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen = field(init=False)

    def __post_init__(self) -> None:
        self._log = self.log.open("ab")
        self.process = subprocess.Popen(
            self.args, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def _signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.process.pid, signum)  # the group this process leads, nothing else
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL the process and every child in its group: a crash, no clean-up runs."""
        self._signal_group(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM the leader and wait; SIGKILL the whole group if it does not exit in time."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self._signal_group(signal.SIGKILL)  # leftovers of a crashed or stuck supervisor
        if self.alive():
            self.process.wait(timeout=10)
        self._log.close()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Background]]:
    """Start background processes for one test; every one is stopped at teardown."""
    started: list[Background] = []

    def _spawn(args: list[str], env: dict[str, str], name: str = "process") -> Background:
        proc = Background(args, env, tmp_path / f"{name}-{len(started)}.log")
        started.append(proc)
        return proc

    yield _spawn
    for proc in reversed(started):
        proc.stop()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)


class Http:
    """Just enough of an HTTP client for a server on 127.0.0.1 (http.client, one connection per call)."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.port = port
        self.token = token

    def with_token(self, token: str) -> Http:
        return Http(self.port, token)

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, chunked: bool = False
    ) -> Reply:
        """`chunked`: the body sent with Transfer-Encoding: chunked (16 KB chunks) and no Content-Length."""
        sent = {"Accept": "application/json"}
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        data: Any = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
            if chunked:
                whole = data
                data = (whole[i : i + 16384] for i in range(0, len(whole), 16384))
        sent.update(headers or {})
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=data, headers=sent, encode_chunked=chunked)
            response = connection.getresponse()
            text = response.read().decode()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, text)
        finally:
            connection.close()

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Reply:
        return self.request("POST", path, body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Reply:
        return self.request("PUT", path, body, **kwargs)


def listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of this test module alone (AOF on): tests here may kill and restart it."""
    server = RedisServer(tmp_path_factory.mktemp("private-redis"))
    server.start()
    yield server
    try:
        server.stop()
    except subprocess.TimeoutExpired:
        server.kill()


def flushed(url: str) -> redis.Redis:
    client = redis.Redis.from_url(url)
    client.flushdb()
    return client


def wait_until_in_aof(url: str) -> None:
    """Wait until Redis has written every write it answered to its AOF file, where a killed
    redis-server cannot lose it (with appendfsync everysec, Redis holds writes back while an fsync
    is still running)."""
    client = redis.Redis.from_url(url)
    try:
        wait_for(
            lambda: client.info("persistence")["aof_buffer_length"] == 0,
            timeout=60,
            interval=0.05,
            what="Redis to write its AOF buffer to the file",
        )
    finally:
        client.close()


def live_offers_of(deps: Deps, volunteer_id: str) -> list[str]:
    offers = deps.store.offers.get_many(deps.store.offers.ids_of_volunteer(volunteer_id, limit=10_000))
    return [o.id for o in offers if o.status in ("pending", "accepted")]


@contextmanager
def serving_api(env: dict[str, str], log: Path) -> Iterator[Http]:
    """gunicorn with the application factory, as in production, until the block ends."""
    from service.launcher import gunicorn_command

    port = free_port()
    server = Background([*gunicorn_command(bin_path("gunicorn"), port), "--graceful-timeout", "5"], env, log)
    try:
        wait_for(lambda: listening(port) or not server.alive(), timeout=60, what="gunicorn to listen")
        assert server.alive(), server.output()
        wait_for(lambda: Http(port).get("/healthz").status == 200, timeout=60, what="/healthz")
        yield Http(port)
    finally:
        server.stop()


def workers_alive(env: dict[str, str]) -> int:
    """RQ workers registered in the Redis of `env`."""
    from rq import Worker

    client = redis.Redis.from_url(env["REDIS_URL"])
    try:
        return Worker.count(connection=client)
    finally:
        client.close()


def start_aidline_worker(spawn: Callable[..., Background], env: dict[str, str]) -> Background:
    """`aidline worker` with one match and one notify process, once both are registered; `spawn` stops it."""
    proc = spawn([bin_path("aidline"), "worker", "--processes", "1", "--notify-processes", "1"], env, "worker")
    wait_for(lambda: workers_alive(env) >= 2 or not proc.alive(), timeout=60, what="the RQ workers to register")
    assert proc.alive(), proc.output()
    return proc
