"""The requester's tracking page in a real browser (Debian's chromium through Playwright): the SMS link of a done need
opened on a phone, in Chinese, rated with the page's form. The app is served from this process (the test's Redis
and clock); requests to any other origin are blocked, and a console error (a CSP violation among them), a page error,
a failed request or a dialog fails the test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from tests.conftest import Tokens
from tests.console.test_console_browser import CHROMIUM, WAIT_MS, Watched, expect

pytestmark = pytest.mark.slow

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def served(app: Any) -> Iterator[str]:
    """The test's app on a free local port, in a thread; its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed (make install installs it)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


def test_a_requester_opens_the_link_of_a_done_need_in_chinese_and_rates_it(
    browser: Any, served: str, client: Any, tokens: Tokens, make_need: Any, make_volunteer: Any
) -> None:
    volunteer = make_volunteer(on_duty=True, location={"lat": 46.35, "lon": 132.25})
    need = make_need(requester={"name": "Zhang", "phone": "+8613900000002", "locale": "zh"})
    assign = client.post(
        f"/api/v1/needs/{need['id']}/assign", json={"volunteer_id": volunteer["id"]}, headers=tokens.dispatcher
    )
    assert assign.status_code == 200, assign.get_json()
    for step in ("en_route", "on_site", "done"):
        progressed = client.post(
            f"/api/v1/needs/{need['id']}/progress", json={"status": step}, headers=tokens.volunteer(volunteer["id"])
        )
        assert progressed.status_code == 200, progressed.get_json()
    code = need["tracking_code"]
    context = browser.new_context(viewport=PHONE, locale="en-US", is_mobile=True)
    watched = Watched(context.new_page(), served, "track-page-zh")
    page = watched.page
    try:
        page.goto(f"{served}/t/{code}")

        expect(page.get_by_test_id("headline")).to_have_text("帮助已完成，请告诉我们效果如何。")
        expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
        for name in ("received", "searching", "coming", "on_the_way", "arrived"):
            expect(page.get_by_test_id(f"step-{name}")).to_have_attribute("data-state", "done")
        expect(page.get_by_test_id("step-done")).to_have_attribute("data-state", "current")
        expect(page.get_by_test_id("helpers")).to_have_text("Li（1.1 公里）")
        assert "13900000002" not in page.content() and "13800000001" not in page.content()
        watched.shot("done")

        page.get_by_test_id("rating-5").check()
        expect(page.get_by_test_id("fixed-yes")).to_be_checked()
        page.get_by_test_id("comment").fill("谢谢小李！")
        page.get_by_test_id("send-feedback").click()

        expect(page.get_by_test_id("thanks")).to_have_text("感谢您的评价！您的求助已办结。", timeout=WAIT_MS)
        expect(page.get_by_test_id("step-closed")).to_have_attribute("data-state", "done")
        expect(page.get_by_test_id("rating")).to_have_text("5 / 5")
        watched.shot("closed")
        tracked = client.get(f"/api/v1/track/{code}").get_json()
        assert tracked["status"] == "closed" and tracked["rating"] == 5
    finally:
        context.close()
    assert not watched.problems, "\n".join(watched.problems)
