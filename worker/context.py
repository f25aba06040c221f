"""What a worker process runs its jobs with: one set of dependencies, and each job's log context.

`aidline worker` builds the dependencies once per process from its settings and connection (the
composition root, service.bootstrap) and installs them here before the first job; tests install
their own.
"""

from __future__ import annotations

import logging
from typing import Any

from rq import Queue, SimpleWorker
from rq.job import Job
from rq.job_lifecycle import call_exception_handlers

from service.deps import Deps
from service.logs import job_id_var, request_id_var

log = logging.getLogger("aidline.worker")

_installed: Deps | None = None


def install(deps: Deps | None) -> None:
    """Make `deps` what this process's jobs run with (None forgets it)."""
    global _installed
    _installed = deps


def current_deps() -> Deps:
    """The installed dependencies; a job run outside `aidline worker` without them is a setup error."""
    if _installed is None:
        raise RuntimeError("no dependencies installed in this worker process: run jobs with `aidline worker`")
    return _installed


class JobContextWorker(SimpleWorker):
    """A non-forking worker that logs each job with its id and the request that led to it.

    Jobs enqueued while a job runs carry the same request id, so one need can be followed from
    the request to every job it caused.
    """

    def execute_job(self, job: Job, queue: Queue) -> Any:
        job_token = job_id_var.set(job.id)
        request_token = request_id_var.set((job.meta or {}).get("request_id"))
        try:
            return super().execute_job(job, queue)
        finally:
            request_id_var.reset(request_token)
            job_id_var.reset(job_token)

    def handle_exception(self, job: Job, *exc_info: Any) -> None:
        """An expected failure that is tried again (its exception says `retried = True`, as a refused delivery
        attempt's does): one line of the log, not a traceback; every other failure as RQ logs it."""
        if getattr(exc_info[1], "retried", False):
            log.warning(
                "job failed, tried again later", extra={"error": f"{type(exc_info[1]).__name__}: {exc_info[1]}"}
            )
            call_exception_handlers(self._exc_handlers, job, *exc_info)
            return
        super().handle_exception(job, *exc_info)
