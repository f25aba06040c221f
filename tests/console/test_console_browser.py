"""The console in a real browser (Debian's chromium through Playwright) against the real stack: gunicorn, the RQ
workers and redis-server. Every test blocks requests to any other origin and fails on a console error, a page
error, a failed request or a dialog; each page is saved as a screenshot under var/screenshots/."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import redis

from service.cli import create_token
from service.models import Role
from service.store import Store
from tests.conftest import RedisServer
from tests.e2e.conftest import Background, Http, bin_path, process_env, serving_api, wait_for, workers_alive

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).parents[2] / "var" / "screenshots"
WAIT_MS = 15_000
"""How long to wait for something to show in the browser (the board polls every 3 s)."""

EVIL = '<script>alert("x")</script>"><img src=x onerror=alert(1)>'
EVIL_GRID = re.sub(r"[\s,/]", "", EVIL)[:50]
"""As hostile as a grid's name may be (no spaces, commas or slashes)."""


@dataclass
class Stack:
    http: Http
    base: str
    store: Store
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, role: str) -> str:
        if role not in self.tokens:
            self.tokens[role] = create_token(self.store, Role(role), None)
        return self.tokens[role]

    def api(self, role: str = "dispatcher") -> Http:
        return self.http.with_token(self.token(role))

    def need(self, role: str = "intake", **overrides: Any) -> dict[str, Any]:
        body = {
            "kind": "water_delivery",
            "location": {"lat": 46.34, "lon": 132.25},
            "address": "Station 2, house 14",
            "priority": "high",
            "description": "No water since the pump failed",
            "requester": {"name": "Zhang", "phone": "+8613900000002"},
            **overrides,
        }
        reply = self.api(role).post("/api/v1/needs", body)
        assert reply.status == 201, reply.text
        return dict(reply.json)

    def volunteer(self, **overrides: Any) -> dict[str, Any]:
        body = {
            "name": "Li Jinfeng",
            "phone": "+8613800000001",
            "skills": ["driving", "heavy_lifting"],
            "location": {"lat": 46.36, "lon": 132.25},
            "capacity": 2,
            "channels": [],
            "locale": "zh",
            "grid": "grid-2",
            "on_duty": True,
            **overrides,
        }
        reply = self.api().post("/api/v1/volunteers", body)
        assert reply.status == 201, reply.text
        return dict(reply.json)

    def status_of(self, need_id: str) -> str:
        return str(self.api().get(f"/api/v1/needs/{need_id}").json["status"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """redis-server, gunicorn with the app factory and `aidline worker`, for this module's tests."""
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed (make install installs it)")
    directory = tmp_path_factory.mktemp("console-stack")
    server = RedisServer(directory)
    server.start()
    env = process_env(server.url, AIDLINE_RATE_LIMITS="false")
    client = redis.Redis.from_url(server.url)
    try:
        with serving_api(env, directory / "api.log") as http:
            worker = Background(
                [bin_path("aidline"), "worker", "--processes", "1", "--notify-processes", "1"],
                env,
                directory / "worker.log",
            )
            try:
                wait_for(lambda: workers_alive(env) >= 2 or not worker.alive(), timeout=60, what="the RQ workers")
                assert worker.alive(), worker.output()
                yield Stack(http=http, base=f"http://127.0.0.1:{http.port}", store=Store(client))
            finally:
                worker.stop()
    finally:
        client.close()
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


class Watched:
    """A page whose every request to another origin is blocked, and whose errors are collected."""

    def __init__(self, page: Any, origin: str, name: str) -> None:
        self.page = page
        self.origin = origin
        self.name = name
        self.problems: list[str] = []
        self.shots = 0
        page.route("**/*", self._route)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("requestfailed", self._failed)
        page.on("dialog", self._dialog)

    def _route(self, route: Any) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != self.origin:
            self.problems.append(f"request to another origin: {url}")
            route.abort()
        else:
            route.continue_()

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning") and "DevTools" not in message.text:
            self.problems.append(f"console {message.type}: {message.text}")

    def _failed(self, request: Any) -> None:
        failure = request.failure or ""
        same_origin = request.url.startswith(self.origin)
        if same_origin and "ERR_ABORTED" in failure:
            return  # a poll still in flight when the page moved on: not a failure of the page
        self.problems.append(f"request failed: {request.url} {failure}")

    def _dialog(self, dialog: Any) -> None:
        self.problems.append(f"a dialog opened: {dialog.message}")
        dialog.dismiss()

    def shot(self, what: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        self.page.screenshot(path=str(SCREENSHOTS / f"{self.name}-{self.shots:02d}-{what}.png"), full_page=True)

    def sign_in(self, token: str) -> None:
        self.page.goto(f"{self.origin}/console/login")
        self.shot("login")
        self.page.get_by_test_id("login-token").fill(token)
        self.page.get_by_test_id("login-submit").click()
        expect(self.page.get_by_test_id("board")).to_be_visible(timeout=WAIT_MS)


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


@pytest.fixture
def make_page(browser: Any, stack: Stack, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Open a watched page (1280 px wide unless told); at the end, fail on anything it collected."""
    opened: list[tuple[Any, Watched]] = []

    def _open(width: int = 1280, height: int = 800) -> Watched:
        context = browser.new_context(viewport={"width": width, "height": height}, locale="en-US")
        watched = Watched(context.new_page(), stack.base, f"{request.node.name}-{width}")
        opened.append((context, watched))
        return watched

    yield _open
    problems = [p for _, w in opened for p in w.problems]
    for context, _ in opened:
        context.close()
    assert not problems, "\n".join(problems)


def row(page: Any, need_id: str) -> Any:
    return page.locator(f'[data-testid="need-row"][data-need-id="{need_id}"]').first


def visible(page: Any, testid: str) -> Any:
    return page.locator(f'[data-testid="{testid}"]:visible')


def test_sign_in_shows_the_board(make_page: Any, stack: Stack) -> None:
    watched = make_page()

    watched.sign_in(stack.token("dispatcher"))

    expect(watched.page.get_by_test_id("count-queued")).to_be_visible()
    watched.shot("board")
    cookies = watched.page.context.cookies()
    session = next(c for c in cookies if c["name"] == "aidline_console")
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert stack.token("dispatcher") not in watched.page.url
    stored = watched.page.evaluate("JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])")
    assert stack.token("dispatcher") not in stored


def test_a_need_sent_through_the_api_appears_on_the_board_without_a_reload(make_page: Any, stack: Stack) -> None:
    watched = make_page()
    watched.sign_in(stack.token("dispatcher"))
    page = watched.page
    first = stack.need()
    row(page, first["id"]).wait_for(timeout=WAIT_MS)
    row(page, first["id"]).get_by_test_id("open-need").click()
    expect(page.get_by_test_id("need-panel")).to_be_visible(timeout=WAIT_MS)
    page.get_by_test_id("action-defer").click()
    half_typed = page.locator('[data-testid="reason"]:visible')
    half_typed.fill("waiting for the road to")
    page.evaluate("window.__sameDocument = 'yes'")  # gone if the page reloads

    need = stack.need(description="arrives while the board is open")

    expect(row(page, need["id"])).to_be_visible(timeout=WAIT_MS)
    assert page.evaluate("window.__sameDocument") == "yes"
    expect(half_typed).to_have_value("waiting for the road to")
    watched.shot("board-updated")


def test_an_escalated_need_is_assigned_from_its_panel_to_a_picked_volunteer(make_page: Any, stack: Stack) -> None:
    # far from the other tests' needs, so that nothing else is offered to this volunteer meanwhile
    volunteer = stack.volunteer(
        location={"lat": 47.53, "lon": 131.0}, phone="+8613800000011", name="Wang Picked", capacity=5
    )
    soon = (datetime.now(UTC) + timedelta(minutes=3)).isoformat()
    need = stack.need(  # 3.3 km at 30 km/h take 6.6 minutes: nobody can be there in time, so it is escalated
        arrive_by=soon, location={"lat": 47.5, "lon": 131.0}, description="nobody can be there in time"
    )
    wait_for(lambda: stack.status_of(need["id"]) == "escalated", timeout=60, what="the need to be escalated")
    watched = make_page()
    watched.sign_in(stack.token("dispatcher"))
    page = watched.page

    escalated = row(page, need["id"])
    expect(escalated).to_be_visible(timeout=WAIT_MS)
    escalated.get_by_test_id("open-need").click()
    panel = page.get_by_test_id("need-panel")
    expect(panel).to_be_visible(timeout=WAIT_MS)
    page.get_by_test_id("action-assign").click()
    candidate = page.locator(f'[data-testid="candidate"][data-volunteer-id="{volunteer["id"]}"]')
    expect(candidate).to_be_visible()
    watched.shot("assign-picker")
    candidate.click()
    visible(page, "confirm").click()

    expect(page.get_by_test_id("flash")).to_be_visible(timeout=WAIT_MS)
    watched.shot("assigned")
    offers = stack.api().get(f"/api/v1/volunteers/{volunteer['id']}/offers").json["items"]
    assert [(o["need_id"], o["status"]) for o in offers] == [(need["id"], "accepted")]
    assert stack.status_of(need["id"]) == "assigned"


def test_deferring_with_a_reason_shows_on_the_requesters_tracking_page(make_page: Any, stack: Stack) -> None:
    need = stack.need(location={"lat": 30.0, "lon": 100.0}, role="dispatcher")
    watched = make_page()
    watched.sign_in(stack.token("dispatcher"))
    page = watched.page
    page.goto(f"{stack.base}/console/needs/{need['id']}")
    watched.shot("need-page")

    page.get_by_test_id("action-defer").click()
    visible(page, "reason").fill("the bridge is flooded until morning")
    visible(page, "confirm").click()

    expect(page.get_by_test_id("flash")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_test_id("status-reason")).to_contain_text("the bridge is flooded until morning")
    watched.shot("deferred")
    tracked = stack.http.get(f"/api/v1/track/{need['tracking_code']}").json
    assert tracked["status"] == "deferred"
    assert any(e["detail"].get("reason") == "the bridge is flooded until morning" for e in tracked["timeline"])


def test_a_refusal_shows_next_to_the_action(make_page: Any, stack: Stack) -> None:
    need = stack.need(location={"lat": 30.0, "lon": 100.0})
    watched = make_page()
    watched.sign_in(stack.token("dispatcher"))
    page = watched.page
    page.goto(f"{stack.base}/console/needs/{need['id']}")
    assert stack.api().post(f"/api/v1/needs/{need['id']}/cancel", {"reason": "a duplicate"}).status == 200
    refused = stack.api().post(f"/api/v1/needs/{need['id']}/defer", {"reason": "later"})
    assert refused.status == 409

    page.get_by_test_id("action-defer").click()
    visible(page, "reason").fill("later")
    visible(page, "confirm").click()

    assert refused.json["message"] == "a need that is cancelled cannot be deferred"
    expect(page.get_by_test_id("action-error")).to_have_text(
        "A need that is cancelled cannot be deferred.", timeout=WAIT_MS
    )  # the API's reason, in the console's words and language
    watched.shot("refused")


def test_switching_to_chinese_and_back(make_page: Any, stack: Stack) -> None:
    watched = make_page()
    watched.sign_in(stack.token("dispatcher"))
    page = watched.page

    page.get_by_test_id("lang-zh").click()
    expect(page.get_by_test_id("nav-board")).to_have_text("看板", timeout=WAIT_MS)
    watched.shot("zh")
    page.goto(f"{stack.base}/console/volunteers")
    expect(page.get_by_test_id("nav-volunteers")).to_have_text("志愿者")
    page.get_by_test_id("lang-en").click()

    expect(page.get_by_test_id("nav-board")).to_have_text("Board", timeout=WAIT_MS)


def test_at_360_px_every_action_is_reachable(make_page: Any, stack: Stack) -> None:
    need = stack.need(location={"lat": 30.0, "lon": 100.0})
    watched = make_page(width=360, height=740)
    watched.sign_in(stack.token("dispatcher"))
    page = watched.page
    for testid in ("nav-board", "nav-map", "new-need", "nav-volunteers", "nav-incidents", "lang-zh", "logout"):
        within(page, page.get_by_test_id(testid))
    row(page, need["id"]).get_by_test_id("open-need").click()
    expect(page.get_by_test_id("need-panel")).to_be_visible(timeout=WAIT_MS)
    watched.shot("board-and-panel")

    for action in ("assign", "rematch", "defer", "cancel", "reopen", "priority"):
        summary = page.get_by_test_id(f"action-{action}")
        summary.scroll_into_view_if_needed()
        within(page, summary)
        summary.click()
        within(page, visible(page, "confirm"))
        summary.click()  # closed again
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.goto(f"{stack.base}/console/needs/new")
    within(page, page.get_by_test_id("submit-need"))
    watched.shot("new-need")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


def within(page: Any, locator: Any) -> None:
    """Visible, and inside the width of the screen."""
    expect(locator).to_be_visible(timeout=WAIT_MS)
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    width = page.viewport_size["width"]
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box


def test_the_map_shows_needs_and_a_click_opens_the_panel(make_page: Any, stack: Stack) -> None:
    stack.volunteer(phone="+8613800000012", name="Zhao On Duty", location={"lat": 46.35, "lon": 132.24})
    need = stack.need(priority="critical", location={"lat": 45.9, "lon": 131.6})  # apart from other tests' needs
    watched = make_page()
    watched.sign_in(stack.token("dispatcher"))
    page = watched.page

    page.goto(f"{stack.base}/console/map")
    marker = page.locator(f'[data-testid="need-marker"][data-need-id="{need["id"]}"]')
    expect(marker).to_be_visible(timeout=WAIT_MS)
    watched.shot("map")
    marker.click()

    expect(page.locator(f'[data-testid="need-panel"][data-need-id="{need["id"]}"]')).to_be_visible(timeout=WAIT_MS)


def test_the_new_need_form_works_with_the_keyboard_and_shows_field_errors(make_page: Any, stack: Stack) -> None:
    watched = make_page()
    watched.sign_in(stack.token("dispatcher"))
    page = watched.page
    page.goto(f"{stack.base}/console/needs/new")
    expect(page.locator('input[name=skills][value="driving"]')).to_be_checked(timeout=WAIT_MS)  # the kind's skills

    page.get_by_test_id("field-kind").focus()
    page.keyboard.press("End")  # "other": its skills replace the water delivery's
    expect(page.locator('input[name=skills][value="driving"]')).not_to_be_checked()
    page.get_by_test_id("field-lat").focus()
    page.keyboard.type("200")
    page.keyboard.press("Tab")
    page.keyboard.type("132.25")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("error-location.lat")).to_be_visible(timeout=WAIT_MS)
    watched.shot("field-error")
    page.get_by_test_id("field-lat").fill("")
    page.get_by_test_id("field-lon").fill("")
    page.get_by_test_id("pick-map").click()  # a click on the map sets the place
    expect(page.get_by_test_id("field-lat")).not_to_have_value("")
    page.get_by_test_id("field-description").focus()
    page.keyboard.type("Roof torn off " + EVIL)
    page.get_by_test_id("submit-need").press("Enter")

    panel = page.get_by_test_id("need-panel")
    expect(panel).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_test_id("need-description")).to_have_text("Roof torn off " + EVIL)
    watched.shot("submitted")


def test_what_people_typed_is_shown_as_text_everywhere(make_page: Any, stack: Stack) -> None:
    volunteer = stack.volunteer(name=EVIL, grid=EVIL_GRID, phone="+8613800000013")
    need = stack.need(
        description=EVIL,
        address=EVIL,
        requester={"name": EVIL[:100], "phone": "+8613900000002"},
        grid=EVIL_GRID,
        location={"lat": 45.5, "lon": 132.8},  # apart from other tests' needs, so its marker is not covered
    )
    stack.api().post(f"/api/v1/needs/{need['id']}/defer", {"reason": EVIL})
    watched = make_page()
    watched.sign_in(stack.token("dispatcher"))
    page = watched.page

    expect(row(page, need["id"])).to_contain_text(EVIL, timeout=WAIT_MS)
    page.goto(f"{stack.base}/console/needs/{need['id']}")
    for testid in ("need-description", "need-address"):
        expect(page.get_by_test_id(testid)).to_have_text(EVIL)
    expect(page.get_by_test_id("status-reason")).to_contain_text(EVIL)
    watched.shot("escaped-panel")
    page.goto(f"{stack.base}/console/volunteers?grid={quote(EVIL_GRID)}")
    expect(page.locator(f'[data-volunteer-id="{volunteer["id"]}"]')).to_contain_text(EVIL)
    page.goto(f"{stack.base}/console/map")
    expect(page.locator(f'[data-testid="need-marker"][data-need-id="{need["id"]}"]')).to_be_visible(timeout=WAIT_MS)
    page.locator(f'[data-testid="need-marker"][data-need-id="{need["id"]}"]').hover()
    watched.shot("escaped-map")
    assert page.locator("img[src=x]").count() == 0
