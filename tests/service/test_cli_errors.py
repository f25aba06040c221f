"""The `aidline` command's answer when Redis cannot be reached or a setting is wrong: one line, not a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
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


def test_the_workers_do_not_start_with_a_wrong_setting(tmp_path: Path) -> None:
    environ = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]), "AIDLINE_WORKER_PROCESSES": "0"}

    finished = subprocess.run(
        [sys.executable, "-c", "from service.cli import main; main()", "worker"],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 1
    assert finished.stderr == "Error: AIDLINE_WORKER_PROCESSES: '0' is not a whole number from 1\n"


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        ("AIDLINE_MAX_OFFERS", "0", "Error: AIDLINE_MAX_OFFERS: '0' is not a whole number from 1\n"),
        ("AIDLINE_INCIDENT_RULES", "water", "Error: AIDLINE_INCIDENT_RULES: "),
    ],
)
def test_run_checks_the_settings_before_it_starts_anything(
    variable: str, value: str, line: str, monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path
) -> None:
    monkeypatch.setenv(variable, value)
    monkeypatch.delenv("REDIS_URL", raising=False)

    with pytest.raises(SystemExit) as exited:
        cli.main(["run", "--port", "1", "--redis-port", "2", "--var", str(tmp_path / "var")])

    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(line) and err.count("\n") == 1 and "demo data" not in err
    assert not (tmp_path / "var").exists()  # no Redis folder, nothing started
