"""`aidline run` (what `make run` starts): a private Redis with AOF, workers, the API, demo data."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis

from tests.e2e.conftest import Http, bin_path, free_port, listening, process_env, wait_for

pytestmark = pytest.mark.slow


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_run_starts_everything_in_a_relative_var_folder_and_ctrl_c_stops_it_all(tmp_path: Path) -> None:
    port, redis_port = free_port(), free_port()
    env = process_env("unused")
    env.pop("REDIS_URL")
    process = subprocess.Popen(
        [bin_path("aidline"), "run", "--port", str(port), "--redis-port", str(redis_port), "--var", "var"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if "Press Ctrl-C to stop." in line:
                break
        assert "Press Ctrl-C to stop." in "".join(output), "".join(output)
        assert "DISPATCHER_TOKEN=" in "".join(output)

        http = Http(port)
        assert http.get("/healthz").status == 200
        wait_for(lambda: http.get("/readyz").status == 200, timeout=30, what="a live worker")
        tokens_file = (tmp_path / "var" / "demo-tokens.env").read_text()
        assert f"export REDIS_URL=redis://127.0.0.1:{redis_port}/0" in tokens_file
        assert redis.Redis(port=redis_port).config_get("appendonly") == {"appendonly": "yes"}
        assert (tmp_path / "var" / "redis").is_dir()

        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        process.wait(timeout=40)
        wait_for(lambda: not listening(port) and not listening(redis_port), timeout=20, what="everything stopped")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        subprocess.run(["pkill", "-f", "--", f"--port {redis_port}"], check=False)
    time.sleep(0.2)
    assert not listening(port)
