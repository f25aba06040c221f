"""Shared fixtures: a real redis-server on a free port, the app, a test client, tokens, workers.

Building the app is slow (flask-smorest, rq-dashboard, the limiter), so the app and the Deps it holds
are built once per distinct settings and shared by every test with those settings; each test still
starts from nothing: `connection` empties Redis (data, tokens, rate-limit counters) and `clock` is
set back to the current time before the test runs.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from service import create_app
from service.bootstrap import bootstrap
from service.cli import create_token
from service.clock import ManualClock
from service.config import Settings
from service.deps import Deps
from service.jobs import ALL_QUEUES
from service.launcher import redis_command
from service.models import Role
from worker import context


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A real redis-server process with AOF, in its own directory; can be killed and restarted."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is not installed (make install installs it)")
        self.process = subprocess.Popen(redis_command(self.port, self.directory), stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 30
        while True:
            try:
                if client.ping():
                    break
            except (redis.ConnectionError, redis.BusyLoadingError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(redis_server: RedisServer) -> Settings:
    return Settings.from_env({}, redis_url=redis_server.url, public_url="http://aid.test")


@pytest.fixture(scope="session")
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """One client of the test Redis for the whole run (the shared Deps hold it)."""
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


@pytest.fixture
def connection(redis_client: redis.Redis) -> redis.Redis:
    """The test Redis, emptied for this test: no records, tokens, jobs or rate-limit counters left."""
    redis_client.flushdb()
    return redis_client


@pytest.fixture(scope="session")
def session_clock() -> ManualClock:
    """The one clock the shared Deps hold; `clock` sets it back to the current time for each test."""
    return ManualClock()


@pytest.fixture
def clock(session_clock: ManualClock) -> ManualClock:
    """The time every service function and in-process job sees; it moves only when a test moves it."""
    session_clock.set(datetime.now(UTC))
    return session_clock


class Shared:
    """Builds a thing once per distinct ingredients and hands the same one to every test using them.

    Settings are told apart by value, anything else by identity (a test that brings its own clock or
    connection gets its own Deps and app). The last few are kept.
    """

    def __init__(self, keep: int = 8) -> None:
        self.keep = keep
        self._built: OrderedDict[tuple[Any, ...], tuple[tuple[Any, ...], Any]] = OrderedDict()

    def once(self, kind: str, ingredients: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        key = (kind, *(repr(i) if isinstance(i, Settings) else id(i) for i in ingredients))
        if key not in self._built:
            self._built[key] = (ingredients, build())  # the ingredients are kept so their ids stay theirs
            while len(self._built) > self.keep:
                self._built.popitem(last=False)
        self._built.move_to_end(key)
        return self._built[key][1]


@pytest.fixture(scope="session")
def shared() -> Shared:
    """Deps and apps shared between tests with the same settings."""
    return Shared()


@pytest.fixture
def deps(settings: Settings, connection: redis.Redis, clock: ManualClock, shared: Shared) -> Iterator[Deps]:
    """The test's dependencies (shared with tests of the same settings), also installed for in-process jobs."""
    built = shared.once(
        "deps", (settings, connection, clock), lambda: bootstrap(settings, connection=connection, clock=clock)
    )
    context.install(built)
    yield built
    context.install(None)


@pytest.fixture
def app(settings: Settings, deps: Deps, shared: Shared) -> Any:
    """The Flask app on `deps`, built once and shared by every test with the same settings."""
    return shared.once(
        "app", (settings, deps), lambda: create_app({"TESTING": True, "SETTINGS": settings, "DEPS": deps})
    )


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


class Tokens:
    """Creates tokens per role and builds Authorization headers."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._cache: dict[tuple[Role, str | None], str] = {}

    def token(self, role: Role | str, volunteer_id: str | None = None) -> str:
        key = (Role(role), volunteer_id)
        if key not in self._cache:
            self._cache[key] = create_token(self.deps.store, Role(role), volunteer_id)
        return self._cache[key]

    def headers(self, role: Role | str, volunteer_id: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, volunteer_id)}"}

    @property
    def dispatcher(self) -> dict[str, str]:
        return self.headers(Role.DISPATCHER)

    @property
    def intake(self) -> dict[str, str]:
        return self.headers(Role.INTAKE)

    @property
    def ops(self) -> dict[str, str]:
        return self.headers(Role.OPS)

    def volunteer(self, volunteer_id: str) -> dict[str, str]:
        return self.headers(Role.VOLUNTEER, volunteer_id)


@pytest.fixture
def tokens(deps: Deps) -> Tokens:
    return Tokens(deps)


class InProcessWorker(context.JobContextWorker):
    """The worker edge's job runner without RQ's listener for remote commands: nothing sends commands
    to a worker inside a test, and stopping the listener can hold each burst up to a second."""

    def subscribe(self) -> None:
        pass


def run_jobs(connection: redis.Redis, queues: tuple[str, ...] = ALL_QUEUES, max_jobs: int | None = None) -> None:
    """Run queued jobs in this process until the queues are empty (scheduled ones are not waited for)."""
    from rq import Queue

    worker = InProcessWorker([Queue(q, connection=connection) for q in queues], connection=connection)
    worker.work(burst=True, max_jobs=max_jobs, logging_level="WARNING")


@pytest.fixture
def work(connection: redis.Redis) -> Any:
    """Call work() to run the queued jobs with a real in-process SimpleWorker."""

    def _work(queues: tuple[str, ...] = ALL_QUEUES, max_jobs: int | None = None) -> None:
        run_jobs(connection, queues, max_jobs)

    return _work


VOLUNTEER = {
    "name": "Li Jinfeng",
    "phone": "+8613800000001",
    "skills": ["plumbing", "driving"],
    "location": {"lat": 46.33, "lon": 132.21},
    "capacity": 2,
    "channels": ["json://127.0.0.1:9000/hook"],
    "locale": "zh",
    "team": "pioneer",
    "grid": "grid-2",
}

NEED = {
    "kind": "water_delivery",
    "location": {"lat": 46.34, "lon": 132.25},
    "address": "Station 2, house 14",
    "priority": "high",
    "vulnerability": ["elderly_alone"],
    "volunteers_needed": 1,
    "description": "No water since the pump failed",
    "requester": {"name": "Zhang", "phone": "+8613900000002"},
}


@pytest.fixture
def make_volunteer(client: Any, tokens: Tokens) -> Any:
    """Register a volunteer through the API; keyword overrides change the body."""

    def _make(**overrides: Any) -> dict[str, Any]:
        body = {**VOLUNTEER, "channels": [], **overrides}
        response = client.post("/api/v1/volunteers", json=body, headers=tokens.dispatcher)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return _make


@pytest.fixture
def make_need(client: Any, tokens: Tokens) -> Any:
    """Submit a need through the API as a dispatcher; keyword overrides change the body."""

    def _make(headers: dict[str, str] | None = None, **overrides: Any) -> dict[str, Any]:
        body = {**NEED, **overrides}
        response = client.post("/api/v1/needs", json=body, headers=headers or tokens.dispatcher)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return _make


HOUSEHOLD = {
    "address": "Station 2, house 14",
    "location": {"lat": 46.34, "lon": 132.25},
    "grid": "grid-2",
    "vulnerability": ["elderly_alone"],
    "contact": {"name": "Zhang Guilan", "phone": "+8613900000003"},
    "attention_level": "red",
    "preferred_volunteers": [],
    "notes": "Hard of hearing: knock loudly",
}


@pytest.fixture
def make_household(client: Any, tokens: Tokens) -> Any:
    """Register a household of the care register through the API; keyword overrides change the body (each
    household gets its own contact phone unless one is given)."""
    made = iter(range(10_000))

    def _make(**overrides: Any) -> dict[str, Any]:
        body = {**HOUSEHOLD, **overrides}
        if "contact" not in overrides:
            body["contact"] = {**HOUSEHOLD["contact"], "phone": f"+86139{next(made):08d}"}
        response = client.post("/api/v1/households", json=body, headers=tokens.dispatcher)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return _make
