"""Running the workers: a few non-forking RQ workers, a notify worker and the sweep schedule.

RQ's default Worker forks a child for every job and re-imports what the job needs; Aidline's
jobs are small and frequent, so each process runs a SimpleWorker (no fork) with the job
modules imported once. Several processes give parallelism; a supervisor restarts any that die.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rq.cron import CronScheduler

import worker.jobs  # noqa: F401 - the job functions, imported once per process, not per job
from service import jobs
from service.bootstrap import bootstrap, redis_client
from service.config import Settings
from service.logs import setup_logging
from worker import context

log = logging.getLogger("aidline.worker")

SWEEP_INTERVAL = 60
WORKER_TTL = 60
"""An idle worker heartbeats about every WORKER_TTL seconds; a dead one is forgotten after it."""


@dataclass(frozen=True)
class Role:
    name: str
    queues: tuple[str, ...]


def roles(settings: Settings, *, processes: int, notify_processes: int, match_only: bool = False) -> list[Role]:
    """Match workers take urgent, default, low in that order; notify workers take notify.

    With no notify processes the match workers also notify, unless `match_only` (notifications
    then wait for a notify worker elsewhere).
    """
    if match_only:
        notify_processes = 0
    match_queues = jobs.MATCH_QUEUES if notify_processes or match_only else jobs.ALL_QUEUES
    found = [Role(f"match-{i + 1}", match_queues) for i in range(processes)]
    found += [Role(f"notify-{i + 1}", (jobs.NOTIFY,)) for i in range(notify_processes)]
    return found


def work(role: Role, settings: Settings, burst: bool = False) -> None:
    """One worker process: its dependencies built once, then a SimpleWorker with the scheduler on."""
    setup_logging(os.environ.get("AIDLINE_LOG_LEVEL", "INFO"))
    connection = redis_client(settings.redis_url)
    context.install(bootstrap(settings, connection=connection))
    w = context.JobContextWorker(
        list(role.queues),
        connection=connection,
        name=f"aidline-{role.name}-{os.getpid()}",
        maintenance_interval=settings.maintenance_interval,
        worker_ttl=WORKER_TTL,
    )
    w.work(burst=burst, with_scheduler=True, logging_level=os.environ.get("AIDLINE_LOG_LEVEL", "WARNING"))


def schedule(settings: Settings) -> None:
    """The sweep, every minute, through RQ's cron scheduler."""
    scheduler = CronScheduler(connection=redis_client(settings.redis_url), logging_level="WARNING")
    scheduler.register(worker.jobs.sweep, jobs.DEFAULT, interval=SWEEP_INTERVAL, job_timeout=120)
    scheduler.start()  # type: ignore[no-untyped-call]  # rq's cron scheduler is untyped


@dataclass
class Backoff:
    """When to restart a worker process that died: after 1 s, doubling to 30 s; reset once it stays up a minute."""

    delay: float = 1.0
    restart_at: float | None = None
    started_at: float = 0.0

    def schedule(self, now: float) -> float:
        """Plan the next restart; returns the wait in seconds."""
        wait = self.delay
        self.restart_at = now + wait
        self.delay = min(self.delay * 2, 30.0)
        self.started_at = self.restart_at
        return wait

    def note_alive(self, now: float) -> None:
        if now - self.started_at >= 60:
            self.delay = 1.0


def run(
    settings: Settings, *, processes: int, notify_processes: int, burst: bool = False, match_only: bool = False
) -> int:
    """Start the workers and supervise them until SIGINT or SIGTERM."""
    context = multiprocessing.get_context("fork")
    targets: dict[str, tuple[Callable[..., None], tuple[Any, ...]]] = {
        r.name: (work, (r, settings, burst))
        for r in roles(settings, processes=processes, notify_processes=notify_processes, match_only=match_only)
    }
    if not burst:
        targets["scheduler"] = (schedule, (settings,))
    children: dict[str, multiprocessing.process.BaseProcess] = {}
    stopping = False

    stop_signals = {signal.SIGTERM, signal.SIGINT}

    def main(name: str) -> None:
        """A worker process: default handling of the stop signals (RQ installs its own), then its work."""
        for signum in stop_signals:
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals)  # one sent meanwhile takes effect now
        func, args = targets[name]
        func(*args)

    def start(name: str) -> None:
        """Fork a worker process with the stop signals blocked, so it never runs the supervisor's handler."""
        process = context.Process(target=main, args=(name,), name=f"aidline-{name}", daemon=False)
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        children[name] = process

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for name in targets:
        start(name)
    print(f"aidline worker: {', '.join(targets)} started (pid {os.getpid()})", flush=True)
    backoff = {name: Backoff() for name in targets}
    while not stopping:
        time.sleep(0.5)
        now = time.monotonic()
        for name, process in list(children.items()):
            if process.is_alive():
                backoff[name].note_alive(now)
                continue
            if burst or stopping or process.exitcode == 0:
                children.pop(name)  # finished, or asked to stop (Ctrl-C in a terminal reaches the whole group)
                continue
            if backoff[name].restart_at is None:
                delay = backoff[name].schedule(now)
                log.warning("%s exited with %s; restarting in %.0fs", name, process.exitcode, delay)
            if now >= (backoff[name].restart_at or now):
                backoff[name].restart_at = None
                start(name)
        if not children:
            return 0
    for process in children.values():
        if process.pid and process.is_alive():
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for process in children.values():
        process.join(timeout=max(0.1, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
    return 0
