"""JSON logs carrying request ids and job ids, so one need can be followed end to end."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
"""The request being answered, or the request that led to the job being run."""

job_id_var: ContextVar[str | None] = ContextVar("job_id", default=None)
"""The job being run (set by the worker edge around each job)."""


class ContextFilter(logging.Filter):
    """Adds the current request id and, in workers, the job id to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            setattr(record, "request_id", request_id_var.get())  # noqa: B010
        job_id = job_id_var.get()
        if job_id is not None:
            setattr(record, "job_id", job_id)  # noqa: B010
        return True


def current_request_id() -> str | None:
    """The request id of this request, or of the request that led to the running job."""
    return request_id_var.get()


def setup_logging(level: str = "INFO") -> None:
    """One JSON object per line on stderr (python-json-logger)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s", timestamp=True))
    handler.addFilter(ContextFilter())
    root = logging.getLogger("aidline")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
