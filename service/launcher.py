"""`aidline run`: a private Redis with AOF, the API under gunicorn, the workers and demo data."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import click


def redis_command(port: int, data_dir: Path) -> list[str]:
    """redis-server as Aidline wants it: AOF every second, never evict (evicting would drop queue entries)."""
    return [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--maxmemory-policy",
        "noeviction",
        "--save",
        "",
        "--daemonize",
        "no",
        "--logfile",
        str(data_dir / "redis.log"),
    ]


def gunicorn_command(gunicorn: str, port: int) -> list[str]:
    """The API as in production: gunicorn with the application factory."""
    return [gunicorn, "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4", "service:create_app()"]


def wait_for_port(port: int, timeout: float = 15.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise click.ClickException(f"{process.args!r} exited with code {process.returncode} before listening")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise click.ClickException(f"nothing listening on port {port} after {timeout:.0f}s")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(*, port: int, redis_port: int, var: Path) -> None:
    """Start everything, print the URLs and demo tokens, and stop it all on Ctrl-C."""
    # Ctrl-C and SIGTERM both stop everything, even when started with SIGINT ignored (e.g. `&`)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    env = dict(os.environ)
    var = var.resolve()
    processes: list[subprocess.Popen] = []
    bindir = Path(sys.executable).parent
    try:
        if "REDIS_URL" not in env:
            if shutil.which("redis-server") is None:
                raise click.ClickException("redis-server not found: sudo apt-get install redis-server")
            data = var / "redis"
            data.mkdir(parents=True, exist_ok=True)
            # its own session: Ctrl-C reaches the API and workers first; Redis is stopped last
            redis = subprocess.Popen(redis_command(redis_port, data), start_new_session=True)
            processes.append(redis)
            wait_for_port(redis_port, process=redis)
            env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        env.setdefault("AIDLINE_PUBLIC_URL", f"http://127.0.0.1:{port}")
        tokens_file = var / "demo-tokens.env"
        tokens = subprocess.run(
            [str(bindir / "aidline"), "demo", "load", "--tokens-file", str(tokens_file), "--export-env"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        processes.append(subprocess.Popen([str(bindir / "aidline"), "worker"], env=env))
        processes.append(
            subprocess.Popen(
                gunicorn_command(str(bindir / "gunicorn"), port),
                env=env,
            )
        )
        wait_for_port(port, timeout=30)
        print(
            f"\nAidline is running.\n"
            f"  API:       http://127.0.0.1:{port}/api/v1\n"
            f"  API docs:  http://127.0.0.1:{port}/api/docs\n"
            f"  OpenAPI:   http://127.0.0.1:{port}/api/v1/openapi.json\n"
            f"  RQ board:  http://127.0.0.1:{port}/ops/rq  (user: anything, password: the ops token)\n"
            f"  Redis:     {env['REDIS_URL']}\n"
            f"Demo tokens (also in {tokens_file}):\n  "
            + tokens.stdout.strip().replace("\n", "\n  ")
            + "\nPress Ctrl-C to stop.\n",
            flush=True,
        )
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        failed = [str(p.args) for p in processes if p.poll() is not None]
        raise click.ClickException(f"{failed} stopped unexpectedly")
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
    finally:
        # newest first, one at a time: the API and workers finish while Redis is still up
        for p in reversed(processes):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
