"""Domain errors; the HTTP edge translates each to a status code."""

from __future__ import annotations

from typing import Any


class AidlineError(Exception):
    """Base of every error Aidline raises on purpose."""

    status = 400

    def __init__(self, message: str, *, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors


class NotFound(AidlineError):
    status = 404


class Unauthorized(AidlineError):
    status = 401


class Forbidden(AidlineError):
    status = 403


class Conflict(AidlineError):
    """The request is valid but the record's current state does not allow it."""

    status = 409


class InvalidTransition(Conflict):
    def __init__(self, message: str, *, current: str, action: str | None = None) -> None:
        super().__init__(message, errors={"status": [f"current status is {current}"]})
        self.current = current
        self.action = action  # the lifecycle's action refused (service.lifecycle.Action), when it was one


class FeedbackRefused(InvalidTransition):
    """A requester's feedback the need cannot take now; `cause` says why: not_done (not done yet), closed (already
    closed: a rating is given once) or too_late (closed too long ago to reopen)."""

    def __init__(self, message: str, *, current: str, cause: str) -> None:
        super().__init__(message, current=current)
        self.cause = cause


class InvalidInput(AidlineError):
    """Input that passes the schema but breaks a domain rule (e.g. a deadline in the past)."""

    status = 422


class GeocodingUnavailable(InvalidInput):
    pass


class ServiceUnavailable(AidlineError):
    """Something outside Aidline (Redis, a geocoder) is down; nothing was changed."""

    status = 503
