"""What a worker process runs its jobs with: one set of dependencies, and each job's log context.

`aidline worker` builds the dependencies once per process from its settings and connection (the
composition root, service.bootstrap) and installs them here before the first job; tests install
their own.
"""

from __future__ import annotations

from typing import Any

from rq import Queue, SimpleWorker
from rq.job import Job

from service.deps import Deps
from service.logs import job_id_var, request_id_var

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
