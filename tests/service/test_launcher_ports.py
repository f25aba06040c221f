"""`aidline run` refuses a port another process holds, and says how to choose another."""

from __future__ import annotations

import socket

import click
import pytest

from service import launcher


def test_a_taken_port_is_refused_saying_how_to_choose_another() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(click.ClickException) as refused:
            launcher.require_free(port, "Redis", "--redis-port (make run: REDIS_PORT=...)")

    assert refused.value.message == (
        f"port {port} (Redis) is already in use by another process: "
        "choose another with --redis-port (make run: REDIS_PORT=...)"
    )
