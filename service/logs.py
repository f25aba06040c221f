"""JSON logs carrying request ids and job ids, so one need can be followed end to end."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


class ContextFilter(logging.Filter):
    """Adds the current request id (API) or job id and its request id (workers) to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            setattr(record, "request_id", request_id_var.get())  # noqa: B010
        try:
            from rq import get_current_job

            job = get_current_job()
        except Exception:  # noqa: BLE001 - outside a job there is nothing to add
            job = None
        if job is not None:
            setattr(record, "job_id", job.id)  # noqa: B010
            if not getattr(record, "request_id", None):
                setattr(record, "request_id", (job.meta or {}).get("request_id"))  # noqa: B010
        return True


def current_request_id() -> str | None:
    """The request id of this request, or of the request that led to the running job."""
    found = request_id_var.get()
    if found:
        return found
    from rq import get_current_job

    job = get_current_job()
    return (job.meta or {}).get("request_id") if job is not None else None


def setup_logging(level: str = "INFO") -> None:
    """One JSON object per line on stderr (python-json-logger)."""
    from pythonjsonlogger.json import JsonFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s", timestamp=True))
    handler.addFilter(ContextFilter())
    root = logging.getLogger("aidline")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
