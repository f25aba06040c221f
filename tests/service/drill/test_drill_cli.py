"""`aidline drill` and `aidline demo` as a shell user meets them: where the drill looks for the API, what it says
when nothing answers there, and the demo volunteers put off duty (and on again) before a measured drill."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result

from service import cli
from service.deps import Deps
from service.drill import client as drill_client
from service.drill.client import Client, Unreachable


@pytest.fixture
def dead_url() -> Iterator[str]:
    """A URL on a port held (bound, never listening): connecting to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def aidline(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli.cli, list(args), env=env, catch_exceptions=False)


# ---- an API that is not there ----------------------------------------------------------------------


def test_the_client_says_at_once_that_it_cannot_reach_the_api_then_gives_up_in_one_error(dead_url: str) -> None:
    lines: list[str] = []
    client = Client(dead_url, "token", patience=1.0, warn=lines.append)

    with pytest.raises(Unreachable) as gave_up:
        client.catalog()

    assert len(lines) == 1
    assert re.fullmatch(
        rf"cannot reach the API at {dead_url} \(connection refused\); retrying until \d\d:\d\d:\d\d", lines[0]
    )
    assert str(gave_up.value) == f"cannot reach the API at {dead_url} (connection refused); gave up after 1 s"


def test_a_drill_against_nothing_says_so_at_once_and_fails_with_one_line(
    dead_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drill_client, "PATIENCE_SECONDS", 1.0)

    result = aidline("drill", "mini", "--url", dead_url, "--token", "token")

    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"cannot reach the API at {dead_url} (connection refused); retrying until ")
    assert lines[-1] == f"Error: cannot reach the API at {dead_url} (connection refused); gave up after 1 s"
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"AIDLINE_API_URL": "http://api.example:1", "AIDLINE_PUBLIC_URL": "http://public.example:2"}, "api.example"),
        ({"AIDLINE_API_URL": "", "AIDLINE_PUBLIC_URL": "http://public.example:2"}, "public.example"),
        ({"AIDLINE_API_URL": "", "AIDLINE_PUBLIC_URL": ""}, "127.0.0.1:8000"),
    ],
)
def test_the_default_url_is_aidline_api_url_else_the_public_url_else_the_local_port(
    env: dict[str, str], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    used: list[str] = []

    def clean(self: Client) -> dict[str, Any]:
        used.append(self.base)
        return {"needs_removed": 0, "volunteers_removed": 0, "volunteers_kept": [], "needs_rematched": []}

    monkeypatch.setattr(Client, "clean", clean)

    result = aidline("drill", "clean", "--token", "token", env=env)

    assert result.exit_code == 0, result.output
    assert len(used) == 1 and expected in used[0]


# ---- the demo volunteers off duty and on again ------------------------------------------------------------


def test_demo_off_duty_puts_every_demo_volunteer_off_duty_and_on_duty_back(
    deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "_deps", lambda: deps)
    cli.load_demo(deps)
    demo = [row["id"] for row in cli.demo_volunteers()]
    on_before = sum(1 for row in cli.demo_volunteers() if row.get("on_duty"))
    assert on_before > 0

    off = aidline("demo", "off-duty")
    again = aidline("demo", "off-duty")

    assert off.exit_code == 0 and again.exit_code == 0
    assert off.stdout == f"demo volunteers: {on_before} put off duty, {len(demo) - on_before} already off duty\n"
    assert again.stdout == f"demo volunteers: 0 put off duty, {len(demo)} already off duty\n"
    assert not any(v.on_duty for v in deps.store.volunteers.get_many(demo) if v is not None)

    on = aidline("demo", "on-duty")

    assert on.stdout == f"demo volunteers: {len(demo)} put on duty, 0 already on duty\n"
    assert all(v is not None and v.on_duty for v in deps.store.volunteers.get_many(demo))


def test_demo_off_duty_withdraws_the_demo_volunteers_pending_offers(
    deps: Deps, monkeypatch: pytest.MonkeyPatch, make_need: Any, work: Any
) -> None:
    monkeypatch.setattr(cli, "_deps", lambda: deps)
    cli.load_demo(deps)
    need = make_need()
    work()
    [offer] = [o for o in deps.store.offers.of_need(need["id"]) if o.status == "pending"]
    assert offer.volunteer_id.startswith("vol_demo")

    aidline("demo", "off-duty")

    assert deps.store.offers.get(offer.id).status == "withdrawn"


def test_demo_off_duty_before_the_demo_is_loaded_says_so(deps: Deps, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_deps", lambda: deps)

    result = aidline("demo", "off-duty")

    assert result.exit_code == 0
    count = len(cli.demo_volunteers())
    assert (
        result.stdout
        == f"demo volunteers: 0 put off duty, 0 already off duty, {count} not loaded (aidline demo load)\n"
    )
