"""The `aidline` command's answer when Redis cannot be reached or a setting is wrong: one line, not a traceback."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from service import cli


def test_a_command_without_redis_says_to_set_redis_url(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]  # nothing listens on it once the socket is closed
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{closed_port}/0")

    with pytest.raises(SystemExit) as exited:
        cli.main(["token", "create", "--role", "dispatcher"])

    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: cannot reach Redis:") and f"127.0.0.1:{closed_port}" in err
    assert "REDIS_URL" in err and "Traceback" not in err


def test_a_command_with_a_wrong_setting_names_it_in_one_line(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setenv("AIDLINE_TIMEZONE", "Mars/Olympus_Mons")

    with pytest.raises(SystemExit) as exited:
        cli.main(["ops", "status"])

    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err == "Error: AIDLINE_TIMEZONE: 'Mars/Olympus_Mons' is not a time zone, e.g. Asia/Shanghai\n"
