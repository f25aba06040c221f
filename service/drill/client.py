"""The drill's HTTP client: Aidline's API as any client sees it, with a dispatcher token.

Answers over the rate limit (429) and while the service is briefly unavailable (503) are retried
after the Retry-After they carry; a POST that creates a record carries an Idempotency-Key, so a
retry after a lost answer creates nothing twice. Any other error answer raises ApiError with the status and the body.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import requests

RETRY_STATUSES = (429, 502, 503, 504)
MAX_WAIT_SECONDS = 60.0
PATIENCE_SECONDS = 300.0
"""How long a request keeps retrying by default while the API is unreachable, over its rate limit or unavailable."""


class ApiError(Exception):
    """An error answer: `status` and the JSON body (the service's one error format)."""

    def __init__(self, status: int, body: Any, method: str, path: str) -> None:
        message = body.get("message") if isinstance(body, dict) else str(body)
        super().__init__(f"{method} {path}: {status} {message}")
        self.status = status
        self.body = body


class Unreachable(Exception):
    """The API could not be reached (nothing listening, no route, a timeout) for as long as the client waits."""


class Client:
    """Aidline's API under one base URL and one token.

    `warn` is told at once, in one line, when the API cannot be reached and the client starts waiting for it
    (and until when)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 30.0,
        patience: float | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.base = url.rstrip("/")
        self.timeout = timeout
        self.patience = PATIENCE_SECONDS if patience is None else patience
        """How long a request keeps retrying over the rate limit or while the service is unavailable."""
        self.warn = warn or (lambda line: None)
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})
        self.requests = 0
        self.throttled = 0

    def close(self) -> None:
        self.session.close()

    def call(
        self, method: str, path: str, body: Any = None, *, params: dict[str, Any] | None = None, creates: bool = False
    ) -> Any:
        """Send one request and return the JSON answer; retries 429/503 (and lost connections) patiently.

        `creates`: the request creates a record, so it carries an Idempotency-Key and a retry after a lost
        answer creates nothing twice (answers and progress reports are refused with 409 when repeated).
        """
        headers = {"Idempotency-Key": uuid.uuid4().hex} if creates else {}
        give_up = time.monotonic() + self.patience
        wait = 0.5
        attempt = 0
        warned = False
        while True:
            attempt += 1
            self.requests += 1
            try:
                response = self.session.request(
                    method,
                    self.base + path,
                    json=body,
                    params=params,
                    headers=headers,
                    timeout=self.timeout,
                )
            except requests.ConnectionError as error:
                reason = _unreachable_reason(error)
                if time.monotonic() + wait > give_up:
                    raise Unreachable(
                        f"cannot reach the API at {self.base} ({reason}); gave up after {self.patience:.0f} s"
                    ) from None
                if not warned:
                    until = time.strftime("%H:%M:%S", time.localtime(time.time() + give_up - time.monotonic()))
                    self.warn(f"cannot reach the API at {self.base} ({reason}); retrying until {until}")
                    warned = True
                time.sleep(wait)
                wait = min(wait * 2, 10.0)
                continue
            if response.status_code in RETRY_STATUSES and time.monotonic() < give_up:
                self.throttled += 1
                time.sleep(min(_retry_after(response, wait), MAX_WAIT_SECONDS, max(give_up - time.monotonic(), 0.1)))
                wait = min(wait * 2, 10.0)
                continue
            try:
                answer = response.json() if response.content else None
            except ValueError:
                answer = response.text
            if response.status_code == 409 and attempt > 1 and "Idempotency-Key" in str(answer):
                time.sleep(wait)  # our own earlier try is still being processed: its answer comes next
                continue
            if response.status_code >= 400:
                raise ApiError(response.status_code, answer, method, path)
            return answer

    # ---- reading

    def catalog(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.call("GET", "/api/v1/catalog")
        return answer

    def need(self, need_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.call("GET", f"/api/v1/needs/{need_id}")
        return answer

    def events(self, need_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.call("GET", f"/api/v1/needs/{need_id}/events")["items"]
        return items

    def notifications(self, need_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.call("GET", f"/api/v1/needs/{need_id}/notifications")["items"]
        return items

    def volunteer(self, volunteer_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.call("GET", f"/api/v1/volunteers/{volunteer_id}")
        return answer

    def volunteer_offers(self, volunteer_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.call("GET", f"/api/v1/volunteers/{volunteer_id}/offers")["items"]
        return items

    def needs_newest_first(self, *, stop_below: str, max_pages: int = 50) -> Iterator[dict[str, Any]]:
        """Every need, newest first, until ids fall below `stop_below` (ids sort by creation time)."""
        cursor = None
        for _ in range(max_pages):
            params: dict[str, Any] = {"limit": 200}
            if cursor:
                params["cursor"] = cursor
            page = self.call("GET", "/api/v1/needs", params=params)
            for item in page["items"]:
                if item["id"] < stop_below:
                    return
                yield item
            cursor = page.get("next_cursor")
            if not cursor:
                return

    # ---- acting

    def create_volunteer(self, body: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = self.call("POST", "/api/v1/volunteers", body, creates=True)
        return answer

    def create_need(self, body: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = self.call("POST", "/api/v1/needs", body, creates=True)
        return answer

    def accept(self, offer_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.call("POST", f"/api/v1/offers/{offer_id}/accept")
        return answer

    def decline(self, offer_id: str, reason: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.call("POST", f"/api/v1/offers/{offer_id}/decline", {"reason": reason})
        return answer

    def progress(self, need_id: str, status: str, note: str | None = None) -> dict[str, Any]:
        body = {"status": status, **({"note": note} if note else {})}
        answer: dict[str, Any] = self.call("POST", f"/api/v1/needs/{need_id}/progress", body)
        return answer

    def feedback(self, tracking_code: str, rating: int, comment: str | None = None) -> dict[str, Any]:
        body = {"rating": rating, "fixed": True, **({"comment": comment} if comment else {})}
        answer: dict[str, Any] = self.call("POST", f"/api/v1/track/{tracking_code}/feedback", body)
        return answer

    def clean(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.call("POST", "/api/v1/drills/clean")
        return answer


def _retry_after(response: requests.Response, default: float) -> float:
    try:
        return max(float(response.headers.get("Retry-After", default)), 0.05)
    except ValueError:
        return default


def _unreachable_reason(error: requests.ConnectionError) -> str:
    """A few words for why a connection failed: connection refused, timed out, or the exception's name."""
    text = str(error).lower()
    if "refused" in text:
        return "connection refused"
    if "timed out" in text or isinstance(error, requests.Timeout):
        return "timed out"
    if "name or service not known" in text or "nodename nor servname" in text or "resolution" in text:
        return "unknown host"
    return type(error).__name__
