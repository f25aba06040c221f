"""Real receivers for notifications, and settings that point the app and the in-process worker at them.

- ``receiver``: an HTTP server on a free port that records what apprise's ``json://`` plugin posts;
  it can be told to answer the first N requests to a path with 500.
- ``smtp``: an aiosmtpd SMTP server on a free port (AUTH allowed without TLS) that keeps every mail.
- ``settings`` (overrides the root fixture): the notification settings, read from AIDLINE_* variables
  as a deployment would set them.

The servers run once per test module, on the same ports, so the settings (and with them the shared
app) stay the same from test to test; each test starts with nothing recorded.
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from service.config import Settings
from tests.conftest import RedisServer, Tokens, free_port

INBOUND_SECRET = "inbound-test-secret"
SMTP_USER, SMTP_PASSWORD = "aidmail", "m4il-s3cret"


# ---- an HTTP receiver for json:// ---------------------------------------------------------------


@dataclass
class Received:
    """One request apprise made to the receiver."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    payload: dict[str, Any]
    status: int

    @property
    def title(self) -> str:
        return str(self.payload.get("title", ""))

    @property
    def message(self) -> str:
        return str(self.payload.get("message", ""))

    @property
    def ok(self) -> bool:
        return self.status < 400


@dataclass(repr=False)
class Receiver:
    """Records every POST; ``fail_first(n, path)`` makes the next n requests to path answer 500."""

    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)
    _failures: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def __repr__(self) -> str:
        return f"Receiver(port={self.port}, {len(self.requests)} requests)"

    def url(self, path: str, *, user: str | None = None, password: str | None = None) -> str:
        auth = f"{user}:{password}@" if user else ""
        return f"json://{auth}127.0.0.1:{self.port}{path}"

    def reset(self) -> None:
        """Forget every request and planned failure."""
        with self._lock:
            self.requests.clear()
            self._failures.clear()

    def fail_first(self, count: int, path: str) -> None:
        with self._lock:
            self._failures[path] = count

    def record(self, path: str, query: dict[str, str], headers: dict[str, str], payload: dict[str, Any]) -> int:
        with self._lock:
            left = self._failures.get(path, 0)
            status = 500 if left > 0 else 200
            if left > 0:
                self._failures[path] = left - 1
            self.requests.append(Received(path, query, headers, payload, status))
            return status

    def attempts(self, path: str) -> list[Received]:
        """Every request to the path, answered or refused."""
        return [r for r in self.requests if r.path == path]

    def delivered(self, path: str) -> list[Received]:
        """Requests to the path that the receiver accepted: the messages that arrived."""
        return [r for r in self.attempts(path) if r.ok]

    def messages(self, path: str) -> list[str]:
        return [r.message for r in self.delivered(path)]


def _handler(receiver_ref: list[Receiver]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                payload = json.loads(raw.decode("utf-8")) if raw else {}
            except ValueError:
                payload = {"raw": raw.decode("utf-8", "replace")}
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            status = receiver_ref[0].record(parts.path, query, dict(self.headers), payload)
            body = b'{"ok": true}' if status < 400 else b'{"error": "try again"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
            pass

    return Handler


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[Receiver]:
    """The receiver of this test module, serving on one port until the module is done."""
    ref: list[Receiver] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(ref))
    server.daemon_threads = True
    ref.append(Receiver(server))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="json-receiver", daemon=True
    )
    thread.start()
    yield ref[0]
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def receiver(receiver_server: Receiver) -> Receiver:
    """The module's receiver with nothing recorded and no failures planned."""
    receiver_server.reset()
    return receiver_server


@pytest.fixture(scope="module")
def dead_port() -> Iterator[int]:
    """A port held (bound, never listening) for this module: connecting to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


@pytest.fixture
def dead_url(dead_port: int) -> Any:
    """dead_url('/x') is a json:// URL on a port where nothing listens."""

    def _dead(path: str = "/dead", *, user: str | None = None, password: str | None = None) -> str:
        auth = f"{user}:{password}@" if user else ""
        return f"json://{auth}127.0.0.1:{dead_port}{path}"

    return _dead


# ---- an SMTP server ------------------------------------------------------------------------------


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    subject: str
    text: str
    authenticated: bool


class MailBox:
    """aiosmtpd handler that keeps every accepted mail."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's naming
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        part = message.get_body(preferencelist=("plain",))
        text = part.get_content() if part is not None else ""
        self.mails.append(
            Mail(
                sender=envelope.mail_from,
                recipients=list(envelope.rcpt_tos),
                subject=str(message["Subject"]),
                text=text,
                authenticated=bool(session.authenticated),
            )
        )
        return "250 OK"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = (
        isinstance(data, LoginPassword) and data.login == SMTP_USER.encode() and data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 on failure


@dataclass
class SmtpServer:
    controller: Controller
    box: MailBox

    @property
    def port(self) -> int:
        return int(self.controller.port)

    @property
    def mails(self) -> list[Mail]:
        return self.box.mails

    def url(self, to: str, *, sender: str = "aid@example.org", password: str = SMTP_PASSWORD) -> str:
        """An apprise URL for plain SMTP (no TLS) with login, as verified against aiosmtpd."""
        return f"mailto://{SMTP_USER}:{password}@127.0.0.1:{self.port}?from={sender}&to={to}"


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[SmtpServer]:
    """The SMTP server of this test module."""
    box = MailBox()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=_authenticate,
        auth_require_tls=False,
    )
    controller.start()
    yield SmtpServer(controller, box)
    controller.stop()


@pytest.fixture
def smtp(smtp_server: SmtpServer) -> SmtpServer:
    """The module's SMTP server with an empty mailbox."""
    smtp_server.mails.clear()
    return smtp_server


# ---- settings for the app and the worker ---------------------------------------------------------


RETRIES = 3
"""Retries per channel in these tests (AIDLINE_NOTIFY_RETRY_INTERVALS=0,0,0): 1 + 3 tries per channel."""

DISPATCH_SECRET = "disp-s3cret"


@pytest.fixture
def notify_env(receiver: Receiver, dead_url: Any) -> dict[str, str]:
    """AIDLINE_* variables for notifications; a test module may override this fixture to add more.

    Requesters' SMS go to /sms?phone=...; dispatchers to /dispatch; grid-2 has its own /grid-2,
    grid-secret a channel with a password, and grid-dark a channel where nothing listens.
    """
    grids = {
        "grid-2": receiver.url("/grid-2"),
        "grid-secret": receiver.url("/ops", user="ops", password=DISPATCH_SECRET),
        "grid-dark": dead_url("/dark"),
    }
    return {
        "AIDLINE_PUBLIC_URL": "http://aid.test",
        "AIDLINE_NOTIFY_RETRY_INTERVALS": ",".join(["0"] * RETRIES),
        "AIDLINE_SMS_URL_TEMPLATE": receiver.url("/sms") + "?-phone={phone}",
        "AIDLINE_DISPATCHER_CHANNELS": receiver.url("/dispatch"),
        "AIDLINE_GRID_CHANNELS": ";".join(f"{grid}={url}" for grid, url in grids.items()),
        "AIDLINE_INBOUND_SMS_SECRET": INBOUND_SECRET,
    }


@pytest.fixture
def settings(redis_server: RedisServer, notify_env: dict[str, str]) -> Settings:
    """The settings of the app under test and of in-process jobs, read from these AIDLINE_* variables."""
    return Settings.from_env({**notify_env, "REDIS_URL": redis_server.url})


# ---- helpers -------------------------------------------------------------------------------------


class Api:
    """Short calls to the API that the notification tests repeat."""

    def __init__(self, client: Any, tokens: Tokens) -> None:
        self.client = client
        self.tokens = tokens

    def need(self, need_id: str) -> dict[str, Any]:
        response = self.client.get(f"/api/v1/needs/{need_id}", headers=self.tokens.dispatcher)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def notifications(self, need_id: str) -> list[dict[str, Any]]:
        response = self.client.get(f"/api/v1/needs/{need_id}/notifications", headers=self.tokens.dispatcher)
        assert response.status_code == 200, response.get_json()
        return response.get_json()["items"]

    def events(self, need_id: str) -> list[dict[str, Any]]:
        response = self.client.get(f"/api/v1/needs/{need_id}/events", headers=self.tokens.dispatcher)
        assert response.status_code == 200, response.get_json()
        return response.get_json()["items"]

    def offers(self, volunteer_id: str) -> list[dict[str, Any]]:
        response = self.client.get(
            f"/api/v1/volunteers/{volunteer_id}/offers", headers=self.tokens.volunteer(volunteer_id)
        )
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        return body["items"] if isinstance(body, dict) else body

    def pending_offer(self, volunteer_id: str) -> dict[str, Any]:
        pending = [o for o in self.offers(volunteer_id) if o["status"] == "pending"]
        assert len(pending) == 1, self.offers(volunteer_id)
        return pending[0]

    def post(self, path: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Any:
        return self.client.post(path, json=body or {}, headers=headers or self.tokens.dispatcher)

    def accept(self, offer: dict[str, Any]) -> None:
        response = self.post(
            f"/api/v1/offers/{offer['id']}/accept", headers=self.tokens.volunteer(offer["volunteer_id"])
        )
        assert response.status_code == 200, response.get_json()

    def progress(self, need_id: str, status: str, volunteer_id: str) -> None:
        response = self.post(
            f"/api/v1/needs/{need_id}/progress", {"status": status}, headers=self.tokens.volunteer(volunteer_id)
        )
        assert response.status_code == 200, response.get_json()


@pytest.fixture
def volunteer(make_volunteer: Any, receiver: Receiver) -> Any:
    """An on-duty volunteer near the standard need, told through the receiver at /vol."""

    def _make(path: str = "/vol", **overrides: Any) -> dict[str, Any]:
        return make_volunteer(**{"on_duty": True, "channels": [receiver.url(path)], **overrides})

    return _make


@pytest.fixture
def api(client: Any, tokens: Tokens) -> Api:
    return Api(client, tokens)
