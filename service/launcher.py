"""`aidline run`: a private Redis with AOF, the API under gunicorn, the workers and demo data.

Every child runs in its own session, so no signal from the terminal reaches it: Ctrl-C reaches
this launcher alone, which then stops its children itself (the API first, Redis last) and
kills each child's whole process group if it does not exit in time. The worker supervisor and
gunicorn are started again, with backoff, when they die; Redis dying stops everything.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click

from service.bootstrap import check_settings
from service.config import Settings

POLL_SECONDS = 0.1
STOP_GRACE_SECONDS = 20.0
"""How long a child may take to exit after SIGTERM before its whole process group is killed."""
PORTS_FREE_SECONDS = 10.0
"""How long to wait, after stopping, for the ports to be free before reporting them."""
RESTART_DELAY_FIRST = 1.0
RESTART_DELAY_MAX = 30.0
STABLE_AFTER_SECONDS = 60.0
"""A child that stayed up this long is restarted after RESTART_DELAY_FIRST again."""
PR_SET_PDEATHSIG = 1
PRCTL = ctypes.CDLL(None).prctl if sys.platform == "linux" else None
"""Looked up once here: a new child calls it between fork and exec."""


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
    # no request-line limit in gunicorn: the app answers an over-long one with its own JSON 414; no control socket
    # (one fixed path in the home folder, which another instance on the machine would take over or remove)
    return [
        gunicorn,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "--threads",
        "4",
        "--limit-request-line",
        "0",
        "--no-control-socket",
        "service:create_app()",
    ]


def say(message: str, *, blank_line_first: bool = False) -> None:
    """One status line of `aidline run` on stderr; a terminal already gone must not keep it from stopping."""
    prefix = "\n" if blank_line_first else ""
    try:
        click.echo(f"{prefix}aidline run: {message}", err=True)
    except OSError:
        pass


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def describe_exit(returncode: int) -> str:
    """An exit status in words, e.g. `exit code 1` or `exit code -9 (SIGKILL)`."""
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return f"exit code {returncode} ({name})"


def kill_group(pgid: int) -> None:
    """SIGKILL every process left in one child's process group (its session)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def die_with_launcher() -> None:
    """In a new child before it runs: SIGTERM it should `aidline run` itself die (Linux only)."""
    if PRCTL is not None:
        PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)


class StopRequested(Exception):
    """Ctrl-C, SIGTERM or a hang-up asked `aidline run` to stop everything."""


class StopSignals:
    """Ctrl-C, SIGTERM and SIGHUP, recorded by the handler and acted on between steps, never mid-step."""

    def __init__(self) -> None:
        self.received = 0
        self.received_before_stopping = 0

    def install(self) -> None:
        """Handle the stop signals, even when started with SIGINT ignored (e.g. with `&`); nohup stays in force."""
        signal.signal(signal.SIGINT, self.record)
        signal.signal(signal.SIGTERM, self.record)
        if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
            signal.signal(signal.SIGHUP, self.record)

    def record(self, signum: int, frame: object) -> None:
        """The signal handler: count, nothing else."""
        self.received += 1

    def check(self) -> None:
        """Raise StopRequested once a stop signal has arrived."""
        if self.received:
            raise StopRequested

    def sleep(self, seconds: float) -> None:
        """Sleep, raising StopRequested as soon as a stop signal arrives."""
        deadline = time.monotonic() + seconds
        while True:
            self.check()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(POLL_SECONDS, remaining))

    def begin_stopping(self) -> None:
        """From now on one more stop signal means: stop waiting for children, kill them."""
        self.received_before_stopping = self.received

    def impatient(self) -> bool:
        """Whether a stop signal arrived while already stopping."""
        return self.received > self.received_before_stopping


@dataclass
class Child:
    """A child of `aidline run`, in its own session (so also its own process group)."""

    name: str
    args: list[str]
    env: dict[str, str]
    restart: bool
    log: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_delay: float = RESTART_DELAY_FIRST
    restart_at: float | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    def start(self) -> None:
        """Start it in a new session: no signal from the terminal reaches it or its children."""
        self.process = subprocess.Popen(self.args, env=self.env, start_new_session=True, preexec_fn=die_with_launcher)
        self.started_at = time.monotonic()
        self.restart_at = None
        say(f"{self.name} started (pid {self.process.pid})")

    def running(self) -> bool:
        """Started and not yet reaped (it may have exited meanwhile: see exited())."""
        return self.process is not None and self.process.returncode is None

    def exited(self) -> bool:
        """Whether it has exited, without reaping it: its pid and group id stay reserved until reap()."""
        if not self.running():
            return True
        return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None

    def reap(self) -> int:
        """Kill whatever is left in its process group, then collect its exit status."""
        assert self.process is not None
        kill_group(self.pid)
        return self.process.wait()

    def stop(self, signals: StopSignals) -> None:
        """SIGTERM, up to STOP_GRACE_SECONDS to exit (less after another Ctrl-C), then SIGKILL its group."""
        if not self.running():
            return
        if not self.exited():
            os.kill(self.pid, signal.SIGTERM)  # the leader stops its own children
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            while not self.exited() and time.monotonic() < deadline and not signals.impatient():
                time.sleep(POLL_SECONDS)
            if not self.exited():
                say(f"{self.name} (pid {self.pid}) did not stop in time: killing its process group")
        self.reap()

    def plan_restart(self, now: float) -> float:
        """After it died: when to start it again, 1 s doubling to 30 s, reset once it had stayed up a while."""
        if now - self.started_at >= STABLE_AFTER_SECONDS:
            self.restart_delay = RESTART_DELAY_FIRST
        delay = self.restart_delay
        self.restart_at = now + delay
        self.restart_delay = min(delay * 2, RESTART_DELAY_MAX)
        return delay


def launch(children: list[Child], child: Child) -> Child:
    """Start a child and keep it in the list of what to stop (the list's order is the reverse stopping order)."""
    children.append(child)
    child.start()
    return child


def require_free(port: int, what: str, choose: str) -> None:
    """Refuse to start when another process already listens on a port this launcher needs, saying how to choose
    another."""
    if listening(port):
        raise click.ClickException(
            f"port {port} ({what}) is already in use by another process: choose another with {choose}"
        )


def wait_until_listening(port: int, child: Child, signals: StopSignals, timeout: float) -> None:
    """Wait for a child to listen on its port; fail if it exits first or takes longer than timeout."""
    deadline = time.monotonic() + timeout
    while not listening(port):
        if child.exited():
            raise click.ClickException(f"{child.name} exited with {describe_exit(child.reap())} before listening")
        if time.monotonic() > deadline:
            raise click.ClickException(f"{child.name}: nothing listening on port {port} after {timeout:.0f}s")
        signals.sleep(POLL_SECONDS)


def load_demo(command: list[str], env: dict[str, str], signals: StopSignals) -> str:
    """Load the demo data (in its own session too) and return what it prints: the demo tokens."""
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        while True:
            try:
                out, err = process.communicate(timeout=POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                signals.check()
    finally:
        if process.returncode is None:
            kill_group(process.pid)
            process.communicate()
    if process.returncode != 0:
        raise click.ClickException(f"loading the demo data failed with {describe_exit(process.returncode)}:\n{err}")
    return out


def look_after(child: Child) -> None:
    """Start a child whose restart is due, or notice that it died: plan its restart, or fail if it must not die."""
    now = time.monotonic()
    if child.restart_at is not None:
        if now >= child.restart_at:
            child.start()
        return
    if not child.exited():
        return
    pid = child.pid
    exit_status = describe_exit(child.reap())
    if not child.restart:
        where = f" (its log: {child.log})" if child.log else ""
        raise click.ClickException(f"{child.name} (pid {pid}) stopped with {exit_status}{where}; stopped everything")
    delay = child.plan_restart(now)
    say(f"{child.name} (pid {pid}) exited with {exit_status}; restarting in {delay:g}s")


def supervise(children: list[Child], signals: StopSignals) -> None:
    """Until a stop signal: restart the children that died, with backoff."""
    while True:
        signals.sleep(0.5)
        for child in children:
            look_after(child)


def stop_all(children: list[Child], signals: StopSignals) -> None:
    """Stop every child, newest first: the API and the workers finish while Redis is still up."""
    signals.begin_stopping()
    for child in reversed(children):
        child.stop(signals)


def wait_until_ports_free(ports: list[int]) -> list[int]:
    """Wait briefly until nothing listens on these ports; return the ports still in use."""
    deadline = time.monotonic() + PORTS_FREE_SECONDS
    while True:
        busy = [port for port in ports if listening(port)]
        if not busy or time.monotonic() > deadline:
            return busy
        time.sleep(POLL_SECONDS)


def banner(port: int, redis_url: str, tokens_file: Path, tokens: str) -> str:
    """What `aidline run` prints once everything is up."""
    return (
        f"\nAidline is running.\n"
        f"  Console:   http://127.0.0.1:{port}/console  (sign in with the dispatcher token below)\n"
        f"  API:       http://127.0.0.1:{port}/api/v1\n"
        f"  API docs:  http://127.0.0.1:{port}/api/docs\n"
        f"  OpenAPI:   http://127.0.0.1:{port}/api/v1/openapi.json\n"
        f"  RQ board:  http://127.0.0.1:{port}/ops/rq  (user: anything, password: the ops token)\n"
        f"  Redis:     {redis_url}\n"
        f"Demo tokens (also in {tokens_file}):\n  " + tokens.strip().replace("\n", "\n  ") + "\nPress Ctrl-C to stop.\n"
    )


def start_everything(children: list[Child], *, port: int, redis_port: int, var: Path, signals: StopSignals) -> None:
    """Redis (unless REDIS_URL is set), the demo data, the worker supervisor and the API; then print the banner."""
    env = dict(os.environ)
    bindir = Path(sys.executable).parent
    require_free(port, "API", "--port (make run: PORT=...)")
    if "REDIS_URL" not in env:
        if shutil.which("redis-server") is None:
            raise click.ClickException("redis-server not found: sudo apt-get install redis-server")
        require_free(redis_port, "Redis", "--redis-port (make run: REDIS_PORT=...)")
        data = var / "redis"
        data.mkdir(parents=True, exist_ok=True)
        redis = launch(
            children, Child("Redis", redis_command(redis_port, data), env, restart=False, log=data / "redis.log")
        )
        wait_until_listening(redis_port, redis, signals, timeout=15)
        env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    env.setdefault("AIDLINE_PUBLIC_URL", f"http://127.0.0.1:{port}")
    if not env.get("AIDLINE_INBOUND_SMS_SECRET"):
        # the demo's own, so SMS replies can be tried by hand (written to the tokens file); a fresh one each run
        env["AIDLINE_INBOUND_SMS_SECRET"] = secrets.token_urlsafe(18)
    tokens_file = var / "demo-tokens.env"
    tokens = load_demo(
        [str(bindir / "aidline"), "demo", "load", "--tokens-file", str(tokens_file), "--export-env"], env, signals
    )
    launch(children, Child("worker supervisor", [str(bindir / "aidline"), "worker"], env, restart=True))
    api = launch(children, Child("API (gunicorn)", gunicorn_command(str(bindir / "gunicorn"), port), env, restart=True))
    wait_until_listening(port, api, signals, timeout=30)
    print(banner(port, env["REDIS_URL"], tokens_file, tokens), flush=True)


def run(*, port: int, redis_port: int, var: Path) -> None:
    """Start everything, keep it running, and stop it all on Ctrl-C or SIGTERM."""
    check_settings(Settings.from_env())  # a setting no process could start with stops this before anything starts
    signals = StopSignals()
    signals.install()
    var = var.resolve()
    ports = [port] if "REDIS_URL" in os.environ else [port, redis_port]
    children: list[Child] = []
    try:
        start_everything(children, port=port, redis_port=redis_port, var=var, signals=signals)
        supervise(children, signals)
    except StopRequested:
        say("stopping ... (Ctrl-C again to kill at once)", blank_line_first=True)  # after the terminal's ^C
    finally:
        stop_all(children, signals)
        busy = wait_until_ports_free(ports) if children else []
        if busy:
            say(f"stopped everything it started, but port(s) {busy} are still in use by another process")
    if busy:
        raise click.ClickException(f"port(s) {busy} still in use after stopping")
    say("stopped")
