"""The requester's tracking page at /t/{code}: a page, not JSON, in Chinese or English, showing the need as a parcel's
steps, and taking feedback by a plain HTML form once the help is done."""

from __future__ import annotations

import re
from typing import Any

import pytest
import redis

from tests.conftest import NEED, VOLUNTEER, Tokens

STEPS = ("received", "searching", "coming", "on_the_way", "arrived", "done", "closed")
NEAR = {"lat": 46.35, "lon": 132.25}
"""About 1.1 km north of the fixture need."""


class Tracked:
    """A need brought to a status through the API, and its page."""

    def __init__(self, client: Any, tokens: Tokens, make_need: Any, make_volunteer: Any, work: Any) -> None:
        self.client = client
        self.tokens = tokens
        self.make_need = make_need
        self.make_volunteer = make_volunteer
        self.work = work

    def need(self, status: str = "queued", **overrides: Any) -> dict[str, Any]:
        """A need in this status (its volunteer, when it has one, is Li Jinfeng, 1.1 km away)."""
        need = self.make_need(**overrides)
        if status == "escalated":
            self.work()  # nobody on duty: escalated
        elif status == "offered":
            self.make_volunteer(on_duty=True, location=NEAR)
            self.work()
        elif status in ("deferred", "cancelled"):
            verb = {"deferred": "defer", "cancelled": "cancel"}[status]
            self.api("post", f"/api/v1/needs/{need['id']}/{verb}", json={"reason": "the road is closed by snow"})
        elif status != "queued":
            volunteer = self.make_volunteer(on_duty=True, location=NEAR)
            self.api("post", f"/api/v1/needs/{need['id']}/assign", json={"volunteer_id": volunteer["id"]})
            for step in ("en_route", "on_site", "done"):
                if status == "assigned":
                    break
                self.api(
                    "post",
                    f"/api/v1/needs/{need['id']}/progress",
                    json={"status": step},
                    headers=self.tokens.volunteer(volunteer["id"]),
                )
                if status == step:
                    break
            if status == "closed":
                self.api("post", f"/api/v1/track/{need['tracking_code']}/feedback", json={"rating": 4}, headers={})
        got = self.api("get", f"/api/v1/needs/{need['id']}")
        assert got["status"] == status
        return got

    def api(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        response = getattr(self.client, method)(
            path, headers=self.tokens.dispatcher if headers is None else headers, **kwargs
        )
        assert response.status_code in (200, 201), response.get_json()
        return response.get_json()

    def page(self, code: str, lang: str | None = "en", **kwargs: Any) -> Any:
        return self.client.get(f"/t/{code}" + (f"?lang={lang}" if lang else ""), **kwargs)

    def html(self, code: str, lang: str | None = "en", **kwargs: Any) -> str:
        response = self.page(code, lang, **kwargs)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "text/html"
        return str(response.get_data(as_text=True))

    def send(self, code: str, lang: str = "en", headers: dict[str, str] | None = None, **form: Any) -> Any:
        return self.client.post(f"/t/{code}/feedback?lang={lang}", data=form, headers=headers or {})


@pytest.fixture
def tracked(client: Any, tokens: Tokens, make_need: Any, make_volunteer: Any, work: Any) -> Tracked:
    return Tracked(client, tokens, make_need, make_volunteer, work)


def states(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-testid="step-(\w+)" data-state="(\w+)"', html))


def text(html: str, testid: str) -> str:
    """The text of the element with this test id (its tags removed)."""
    found = re.search(rf'<(\w+)[^>]*data-testid="{testid}"[^>]*>(.*?)</\1>', html, re.S)
    assert found, f"no {testid} on the page"
    return re.sub(r"<[^>]+>", "", found.group(2)).strip()


@pytest.mark.parametrize(
    ("status", "current", "headline"),
    [
        ("queued", "searching", "looking for a volunteer"),
        ("offered", "searching", "waiting for their answer"),
        ("escalated", "searching", "a dispatcher is now looking after your request"),
        ("assigned", "coming", "has taken your request"),
        ("en_route", "on_the_way", "on the way"),
        ("on_site", "arrived", "has arrived"),
        ("done", "done", "Please tell us how it went"),
        ("closed", None, "closed"),
        ("deferred", "received", "put off"),
        ("cancelled", "received", "cancelled"),
    ],
)
def test_each_status_is_shown_as_the_step_it_reached(tracked: Tracked, status: str, current: str | None, headline: str):
    need = tracked.need(status)

    html = tracked.html(need["tracking_code"])

    shown = states(html)
    assert list(shown) == list(STEPS)
    if current is None:
        assert set(shown.values()) == {"done"}, "a closed need has gone every step"
    else:
        reached = STEPS.index(current)
        assert [shown[s] for s in STEPS] == ["done"] * reached + ["current"] + ["todo"] * (len(STEPS) - reached - 1)
    assert headline in text(html, "headline")
    assert f'data-status="{status}"' in html


@pytest.mark.parametrize("status", ["deferred", "cancelled"])
def test_deferred_and_cancelled_are_said_plainly_with_the_dispatchers_reason(tracked: Tracked, status: str):
    need = tracked.need(status)

    plain = text(tracked.html(need["tracking_code"]), "plain-status")

    assert plain.startswith(status)
    expected = need["status_reason"]
    assert expected and expected in plain


def test_an_escalation_is_said_plainly_without_the_searchs_own_words(tracked: Tracked):
    need = tracked.need("escalated")
    assert need["status_reason"].startswith("no available volunteer")

    html = tracked.html(need["tracking_code"])

    assert text(html, "plain-status").startswith("escalated")
    assert "dispatcher is now looking after your request" in text(html, "headline")
    assert "no available volunteer" not in html, "the search's words are for dispatchers"


def test_the_volunteers_first_name_and_distance_but_no_phone_number_or_address(tracked: Tracked):
    need = tracked.need("en_route", requester={"name": "Zhang Guilan", "phone": "+8613900000002"})

    html = tracked.html(need["tracking_code"])

    assert text(html, "helpers") == "Li (1.1 km)"
    for private in (VOLUNTEER["phone"], "13800000001", "+8613900000002", "13900000002", NEED["address"], "Jinfeng"):
        assert private not in html
    assert need["id"] not in html


def test_the_deadline_and_the_timeline_are_in_local_time(tracked: Tracked, deps: Any):
    need = tracked.need("assigned")

    html = tracked.html(need["tracking_code"])

    # the test settings' time zone is UTC: '2026-11-29T20:50:29.748Z' is shown as '11-29 20:50'
    due = need["committed_deadline"]
    assert text(html, "deadline") == f"{due[5:10]} {due[11:16]}"
    events = re.findall(r'data-testid="event" data-type="(\w+)"><time datetime="([^"]+)">([^<]+)</time>', html)
    assert [e[0] for e in events][:1] == ["created"]
    assert "assigned_by_dispatcher" in [e[0] for e in events]
    assert all(shown == f"{at[5:10]} {at[11:16]}" for _, at, shown in events)
    assert f"Times are local ({deps.settings.timezone})" in html


def test_chinese_when_the_requester_speaks_it_and_the_switch_link_changes_the_language(tracked: Tracked):
    need = tracked.need("done", requester={"name": "Zhang", "locale": "zh"})
    code = need["tracking_code"]

    html = tracked.html(code, lang=None)

    assert 'lang="zh-Hans"' in html
    assert text(html, "headline") == "帮助已完成，请告诉我们效果如何。"
    assert "送水" in text(html, "kind")
    assert "已受理" in html and "正在寻找志愿者" in html and "李" not in text(html, "helpers")
    assert text(html, "helpers") == "Li（1.1 公里）"
    assert f'href="/t/{code}?lang=en"' in html
    english = tracked.html(code, lang="en")
    assert text(english, "headline") == "The help is done. Please tell us how it went."


def test_without_a_requester_language_the_browsers_is_taken(tracked: Tracked):
    code = tracked.need("queued")["tracking_code"]

    chinese = tracked.html(code, lang=None, headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    english = tracked.html(code, lang=None, headers={"Accept-Language": "en-GB,en;q=0.9"})

    assert "正在为您寻找附近的志愿者" in text(chinese, "headline")
    assert "looking for a volunteer near you" in text(english, "headline")


def test_an_incident_need_says_it_is_part_of_a_wider_incident(tracked: Tracked, client: Any, tokens: Tokens):
    declared = client.post(
        "/api/v1/incidents",
        json={"family": "water", "centre": NEED["location"], "radius_km": 2},
        headers=tokens.dispatcher,
    )
    assert declared.status_code == 201, declared.get_json()
    need = tracked.need("queued")
    assert need["incident_id"] == declared.get_json()["id"]

    english = text(tracked.html(need["tracking_code"]), "incident")
    chinese = text(tracked.html(need["tracking_code"], lang="zh"), "incident")

    assert "part of a wider water incident (1 requests)" in english
    assert "停水事件" in chinese


def test_the_page_reloads_itself_while_the_need_is_open_and_not_once_the_feedback_form_is_shown(tracked: Tracked):
    open_need = tracked.need("assigned")
    done = tracked.need("done")

    assert f'http-equiv="refresh" content="30; url=/t/{open_need["tracking_code"]}?lang=en"' in tracked.html(
        open_need["tracking_code"]
    )
    assert "http-equiv" not in tracked.html(done["tracking_code"])


def test_the_page_has_no_script_and_is_never_cached_or_framed(tracked: Tracked):
    response = tracked.page(tracked.need("queued")["tracking_code"])

    assert "<script" not in response.get_data(as_text=True)
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_the_stylesheet_is_served_locally_and_not_counted(client: Any, tracked: Tracked):
    html = tracked.html(tracked.need("queued")["tracking_code"])
    sheet = re.search(r'<link rel="stylesheet" href="([^"]+)"', html)
    assert sheet and sheet.group(1).startswith("/")

    response = client.get(sheet.group(1))

    assert response.status_code == 200 and response.mimetype == "text/css"
    assert "X-RateLimit-Limit" not in response.headers


def test_an_unknown_code_is_a_404_page_in_the_same_look(client: Any):
    english = client.get("/t/no-such-code?lang=en")
    chinese = client.get("/t/no-such-code", headers={"Accept-Language": "zh-CN"})

    assert english.status_code == 404 and english.mimetype == "text/html"
    assert "No need with this code" in english.get_data(as_text=True)
    assert "track.css" in english.get_data(as_text=True)
    assert chinese.status_code == 404 and "没有与此编号对应的求助" in chinese.get_data(as_text=True)
    posted = client.post("/t/no-such-code/feedback", data={"rating": "5", "fixed": "yes"})
    assert posted.status_code == 404 and posted.mimetype == "text/html"


def test_the_feedback_form_appears_once_the_help_is_done(tracked: Tracked):
    assert 'data-testid="feedback"' not in tracked.html(tracked.need("on_site")["tracking_code"])

    html = tracked.html(tracked.need("done")["tracking_code"])

    assert 'data-testid="feedback"' in html
    assert re.search(r'<form method="post" action="/t/[^"/]+/feedback\?lang=en"', html)
    assert 'name="csrf_token"' not in html, "the code is the secret: no session, no CSRF token"


def test_a_rating_sent_by_the_form_closes_the_need_and_thanks(tracked: Tracked, client: Any):
    need = tracked.need("done")
    code = need["tracking_code"]

    response = tracked.send(code, rating="5", fixed="yes", comment="Thank you, Li!")

    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "Thank you for your feedback" in text(html, "thanks")
    assert text(html, "rating") == "5 / 5"
    assert states(html)["closed"] == "done"
    assert 'data-testid="feedback"' not in html, "no second form right after the thanks"
    tracked_json = client.get(f"/api/v1/track/{code}").get_json()
    assert tracked_json["status"] == "closed" and tracked_json["rating"] == 5
    closed = [e for e in tracked_json["timeline"] if e["type"] == "closed"]
    assert closed[-1]["detail"] == {"rating": 5, "comment": "Thank you, Li!"}
    assert closed[-1]["actor"] == "requester"


def test_not_fixed_reopens_the_need_and_says_so(tracked: Tracked, client: Any):
    need = tracked.need("done")

    response = tracked.send(need["tracking_code"], rating="2", fixed="no")

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "looking for a volunteer again" in text(html, "thanks")
    assert states(html)["searching"] == "current"
    assert client.get(f"/api/v1/track/{need['tracking_code']}").get_json()["status"] == "queued"
    assert "requester says" not in html, "the service's own note of the reopening is for dispatchers"


def test_a_closed_need_shows_the_rating_given_and_within_the_reopen_window_only_a_way_to_say_not_fixed(
    tracked: Tracked,
):
    need = tracked.need("closed")

    html = tracked.html(need["tracking_code"])

    assert 'data-testid="feedback"' not in html, "a closed need is not rated again"
    assert text(html, "rating") == "4 / 5"
    assert "Your request is closed. Thank you." in text(html, "headline")
    assert 'data-testid="reopen"' in html and "Not fixed after all?" in html
    assert '<input type="hidden" name="fixed" value="no">' in html
    assert 'value="yes"' not in html and 'data-testid="fixed-yes"' not in html
    assert re.search(r'value="4" data-testid="rating-4" checked', html), "the rating given stays chosen"


def test_a_closed_need_said_not_fixed_after_all_is_reopened(tracked: Tracked, client: Any):
    need = tracked.need("closed")

    response = tracked.send(need["tracking_code"], rating="2", fixed="no", comment="it leaks again")

    assert response.status_code == 200, response.get_data(as_text=True)
    assert "looking for a volunteer again" in text(response.get_data(as_text=True), "thanks")
    assert client.get(f"/api/v1/track/{need['tracking_code']}").get_json()["status"] == "queued"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_rating_posted_again_for_a_closed_need_is_refused_as_already_closed(tracked: Tracked, lang: str):
    need = tracked.need("closed")  # a minute ago, well within the reopen window

    response = tracked.send(need["tracking_code"], lang=lang, rating="5", fixed="yes")

    assert response.status_code == 409 and response.mimetype == "text/html"
    refusal = text(response.get_data(as_text=True), "refusal")
    expected = {
        "en": "Your request is already closed and your feedback was taken. Thank you.",
        "zh": "您的求助已经办结，您的评价已收到，谢谢。",
    }
    assert refusal.endswith(expected[lang])
    assert "too long ago" not in refusal and "关闭太久" not in refusal


def test_past_the_reopen_window_the_form_is_gone_and_a_late_post_is_refused_in_the_page(
    tracked: Tracked, clock: Any, deps: Any
):
    need = tracked.need("closed")
    clock.advance(deps.settings.reopen_window_seconds + 60)

    assert 'data-testid="feedback"' not in tracked.html(need["tracking_code"])
    response = tracked.send(need["tracking_code"], rating="1", fixed="no")

    assert response.status_code == 409 and response.mimetype == "text/html"
    assert "closed too long ago" in text(response.get_data(as_text=True), "refusal")


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"rating": "0", "fixed": "yes"}, "rating"),
        ({"rating": "6", "fixed": "yes"}, "rating"),
        ({"rating": "five", "fixed": "yes"}, "rating"),
        ({"fixed": "yes"}, "rating"),
        ({"rating": "4", "fixed": "maybe"}, "fixed"),
        ({"rating": "4", "fixed": "yes", "comment": "x" * 2001}, "comment"),
    ],
)
def test_a_bad_field_is_named_in_the_page_and_changes_nothing(
    tracked: Tracked, client: Any, form: dict[str, str], field: str
):
    need = tracked.need("done")

    response = tracked.send(need["tracking_code"], **form)

    assert response.status_code == 422 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert f'data-testid="error-{field}"' in html
    assert [f for f in ("rating", "fixed", "comment") if f'data-testid="error-{f}"' in html] == [field]
    assert client.get(f"/api/v1/track/{need['tracking_code']}").get_json()["status"] == "done"
    if "comment" in form:
        assert form["comment"] in html, "what was typed is kept"


def test_a_bad_rating_is_explained_in_chinese_on_a_chinese_page(tracked: Tracked):
    need = tracked.need("done")

    response = tracked.send(need["tracking_code"], lang="zh", rating="9", fixed="yes")

    assert response.status_code == 422
    assert "请选择 1 到 5 分" in text(response.get_data(as_text=True), "error-rating")
    assert "Not a valid" not in response.get_data(as_text=True), "the schema's English stays out of the page"


def test_a_refusal_is_said_in_the_requesters_words_and_language(tracked: Tracked):
    need = tracked.need("assigned")

    response = tracked.send(need["tracking_code"], lang="zh", rating="5", fixed="yes")

    assert response.status_code == 409
    assert text(response.get_data(as_text=True), "refusal").endswith("您的请求还没有完成：完成后才能为帮助打分。")


def test_feedback_before_the_help_is_done_is_refused_with_the_reason_in_the_page(tracked: Tracked, client: Any):
    need = tracked.need("assigned")

    response = tracked.send(need["tracking_code"], rating="5", fixed="yes")

    assert response.status_code == 409 and response.mimetype == "text/html"
    assert "not done yet" in text(response.get_data(as_text=True), "refusal")
    assert client.get(f"/api/v1/track/{need['tracking_code']}").get_json()["status"] == "assigned"


def test_a_post_from_another_site_is_refused(tracked: Tracked, client: Any):
    need = tracked.need("done")
    code = need["tracking_code"]

    from_elsewhere = tracked.send(code, headers={"Origin": "https://evil.example"}, rating="1", fixed="yes")
    by_referer = tracked.send(code, headers={"Referer": "https://evil.example/page"}, rating="1", fixed="yes")
    null_origin = tracked.send(code, headers={"Origin": "null"}, rating="1", fixed="yes")

    assert [r.status_code for r in (from_elsewhere, by_referer, null_origin)] == [403] * 3
    assert from_elsewhere.mimetype == "text/html"
    assert client.get(f"/api/v1/track/{code}").get_json()["status"] == "done"
    same_site = tracked.send(code, headers={"Origin": "http://localhost"}, rating="4", fixed="yes")
    assert same_site.status_code == 200, "the test client's own host"


def test_the_refusal_of_another_sites_post_is_in_the_requesters_language(tracked: Tracked, client: Any):
    need = tracked.need("done", requester={"name": "Zhang Guilan", "phone": "+8613900000002", "locale": "en"})

    refused = client.post(
        f"/t/{need['tracking_code']}/feedback",
        data={"rating": "1", "fixed": "yes"},
        headers={"Origin": "https://evil.example", "Accept-Language": "zh"},
    )

    assert refused.status_code == 403
    assert "This form can only be sent from its own page." in refused.get_data(as_text=True)


def test_the_public_url_counts_as_this_site(tracked: Tracked):
    need = tracked.need("done")

    response = tracked.send(
        need["tracking_code"],
        headers={"Referer": f"http://aid.test/t/{need['tracking_code']}"},
        rating="5",
        fixed="yes",
    )

    assert response.status_code == 200


def test_the_forms_address_opened_as_a_page_leads_to_the_page(tracked: Tracked, client: Any):
    code = tracked.need("queued")["tracking_code"]

    response = client.get(f"/t/{code}/feedback?lang=zh")

    assert response.status_code == 303 and response.headers["Location"] == f"/t/{code}?lang=zh"


def test_redis_unreachable_is_a_503_page_saying_to_come_back(tracked: Tracked, deps: Any, monkeypatch: Any):
    code = tracked.need("queued")["tracking_code"]

    def unreachable(*_: Any) -> None:
        raise redis.ConnectionError("connection refused")

    monkeypatch.setattr(deps.store.needs, "id_for_tracking", unreachable)
    response = tracked.page(code)

    assert response.status_code == 503 and response.mimetype == "text/html"
    assert int(response.headers["Retry-After"]) > 0
    assert "The service is busy" in text(response.get_data(as_text=True), "track-message")


def test_an_unexpected_failure_is_a_500_page_not_json(tracked: Tracked, deps: Any, monkeypatch: Any):
    code = tracked.need("queued")["tracking_code"]

    def broken(*_: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(deps.store.needs, "id_for_tracking", broken)
    response = tracked.page(code, lang="zh")

    assert response.status_code == 500 and response.mimetype == "text/html"
    assert "出了点问题" in text(response.get_data(as_text=True), "track-message")
