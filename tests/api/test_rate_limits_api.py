"""Rate limits that refuse abuse, not emergencies: one budget per token as large as its role's limit, per client
address without a token, and a batch counted per need."""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from typing import Any

import pytest

from service import create_app
from service.bootstrap import bootstrap
from tests.conftest import NEED

NEEDS = "/api/v1/needs"
SURGE_CLIENTS = 16
SURGE_NEEDS = 2000

LIMITS = {
    "rate_limit_anonymous": "5/minute",
    "rate_limit_inbound": "8/minute",
    "rate_limit_volunteer": "4/minute",
    "rate_limit_intake": "700/minute",
    "inbound_sms_secret": "gateway-secret",
}


@pytest.fixture
def limited(settings: Any, connection: Any, clock: Any, shared: Any) -> Any:
    """A client of an app with small limits; tokens of the `tokens` fixture work in it (the same Redis)."""
    small = dataclasses.replace(settings, **LIMITS)
    deps = shared.once("deps", (small, connection, clock), lambda: bootstrap(small, connection=connection, clock=clock))
    app = shared.once("app", (small, deps), lambda: create_app({"TESTING": True, "SETTINGS": small, "DEPS": deps}))
    return app.test_client()


def from_address(address: str) -> dict[str, Any]:
    return {"environ_base": {"REMOTE_ADDR": address}}


def test_a_surge_of_2000_needs_from_16_clients_with_one_dispatcher_token_is_never_refused(app, tokens, deps):
    """Under the default limits, while a dispatcher polls the list with the same token."""
    statuses: Counter[int] = Counter()
    polls: Counter[int] = Counter()
    lock = threading.Lock()
    done = threading.Event()

    def submit(share: int) -> None:
        client = app.test_client()
        for _ in range(share):
            status = client.post(NEEDS, json=NEED, headers=tokens.dispatcher).status_code
            with lock:
                statuses[status] += 1

    def poll() -> None:
        client = app.test_client()
        while True:  # at least once, and until the surge is over
            status = client.get(NEEDS, headers=tokens.dispatcher).status_code
            with lock:
                polls[status] += 1
            if done.is_set():
                return

    poller = threading.Thread(target=poll)
    poller.start()
    clients = [threading.Thread(target=submit, args=(SURGE_NEEDS // SURGE_CLIENTS,)) for _ in range(SURGE_CLIENTS)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    done.set()
    poller.join()

    assert statuses == {201: SURGE_NEEDS}
    assert set(polls) == {200}
    assert sum(deps.store.needs.count_by_status().values()) == SURGE_NEEDS


def test_tracking_from_one_address_is_limited_while_another_address_is_not(limited, make_need):
    code = make_need()["tracking_code"]
    track = f"/api/v1/track/{code}"

    allowed = [limited.get(track, **from_address("10.0.0.1")).status_code for _ in range(5)]
    refused = limited.get(track, **from_address("10.0.0.1"))

    assert allowed == [200] * 5
    assert refused.status_code == 429
    assert refused.get_json()["code"] == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert limited.get(track, **from_address("10.0.0.2")).status_code == 200


def test_the_api_docs_are_never_limited(limited):
    answers = [limited.get("/api/v1/openapi.json", **from_address("10.0.0.9")).status_code for _ in range(8)]

    assert answers == [200] * 8, "Swagger UI reads the document on every page load"


def test_the_tracking_page_its_form_and_feedback_spend_the_same_address_budget(limited, make_need):
    code = make_need()["tracking_code"]
    address = from_address("10.0.0.3")
    for _ in range(2):
        assert limited.get(f"/t/{code}", **address).status_code == 200
    assert limited.post(f"/t/{code}/feedback", data={"rating": "5", "fixed": "yes"}, **address).status_code == 409
    for _ in range(2):
        assert limited.post(f"/api/v1/track/{code}/feedback", json={"rating": 5}, **address).status_code != 429

    assert limited.get(f"/api/v1/track/{code}", **address).status_code == 429
    page = limited.get(f"/t/{code}?lang=en", **address)
    form = limited.post(f"/t/{code}/feedback", data={"rating": "5", "fixed": "yes"}, **address)
    for refused in (page, form):
        assert refused.status_code == 429 and refused.mimetype == "text/html", "the page's refusal is a page"
        assert int(refused.headers["Retry-After"]) > 0
    assert "Too many requests" in page.get_data(as_text=True)


def test_a_wrong_token_spends_its_address_budget(limited, tokens):
    address = from_address("10.0.0.4")
    guesses = [
        limited.get(NEEDS, headers={"Authorization": f"Bearer guess-{i}"}, **address).status_code for i in range(6)
    ]

    assert guesses == [401] * 5 + [429]
    assert limited.get(NEEDS, headers=tokens.dispatcher, **address).status_code == 200, "a valid token has its own"


def test_inbound_sms_from_a_gateway_has_a_budget_of_its_own(limited, make_need):
    code = make_need()["tracking_code"]
    gateway = from_address("10.0.0.5")
    sms = {"from": "+8613800000001", "body": "YES 123456"}
    headers = {"X-Aidline-Secret": "gateway-secret"}

    answers = [limited.post("/api/v1/inbound/sms", json=sms, headers=headers, **gateway) for _ in range(9)]

    assert [a.status_code for a in answers[:8]] == [404] * 8, "no such offer code, but not refused"
    assert answers[8].status_code == 429
    assert limited.get(f"/api/v1/track/{code}", **gateway).status_code == 200, "tracking keeps its own budget"


def test_a_volunteer_token_has_its_roles_moderate_limit(limited, tokens, make_volunteer):
    volunteer = make_volunteer()
    mine = tokens.volunteer(volunteer["id"])
    url = f"/api/v1/volunteers/{volunteer['id']}"

    answers = [limited.get(url, headers=mine).status_code for _ in range(5)]

    assert answers == [200] * 4 + [429]
    assert limited.get(url, headers=tokens.dispatcher).status_code == 200


def test_a_batch_counts_once_per_need(limited, tokens, deps):
    first = limited.post(f"{NEEDS}/batch", json={"needs": [NEED] * 500}, headers=tokens.intake)
    assert first.status_code == 201
    assert first.headers["X-RateLimit-Limit"] == "700"
    assert first.headers["X-RateLimit-Remaining"] == "200"

    over = limited.post(f"{NEEDS}/batch", json={"needs": [NEED] * 201}, headers=tokens.intake)

    assert over.status_code == 429
    assert sum(deps.store.needs.count_by_status().values()) == 500, "a refused batch creates nothing"
    assert limited.post(f"{NEEDS}/batch", json={"needs": [NEED] * 200}, headers=tokens.intake).status_code == 201
    assert limited.post(NEEDS, json=NEED, headers=tokens.intake).status_code == 429


def test_the_token_is_looked_up_once_per_request(client, tokens, deps, monkeypatch):
    headers = tokens.dispatcher
    record = deps.store.tokens.record
    lookups: list[str] = []

    def counted(token: str) -> Any:
        lookups.append(token)
        return record(token)

    monkeypatch.setattr(deps.store.tokens, "record", counted)

    assert client.get(NEEDS, headers=headers).status_code == 200
    assert client.post(NEEDS, json=NEED, headers=headers).status_code == 201
    assert len(lookups) == 2, "the limiter and the role check share one lookup"


def test_limits_can_be_turned_off(settings, connection, tokens):
    off = dataclasses.replace(settings, rate_limits=False, rate_limit_dispatcher="1/minute")
    client = create_app({"TESTING": True, "SETTINGS": off, "DEPS": bootstrap(off, connection=connection)}).test_client()

    assert [client.get(NEEDS, headers=tokens.dispatcher).status_code for _ in range(3)] == [200] * 3


def test_behind_a_proxy_each_forwarded_client_has_its_own_budget(settings, connection, make_need):
    proxied = dataclasses.replace(settings, proxy_hops=1, rate_limit_anonymous="2/minute")
    app = create_app({"TESTING": True, "SETTINGS": proxied, "DEPS": bootstrap(proxied, connection=connection)})
    client = app.test_client()
    track = f"/api/v1/track/{make_need()['tracking_code']}"
    proxy = from_address("10.9.9.9")

    first = [client.get(track, headers={"X-Forwarded-For": "203.0.113.7"}, **proxy).status_code for _ in range(3)]

    assert first == [200, 200, 429]
    assert client.get(track, headers={"X-Forwarded-For": "203.0.113.8"}, **proxy).status_code == 200


def test_a_refusal_says_whose_budget_is_spent_its_limit_and_the_setting(limited, make_need, tokens, make_volunteer):
    code = make_need()["tracking_code"]
    volunteer = make_volunteer()
    mine = tokens.volunteer(volunteer["id"])
    for _ in range(5):
        limited.get(f"/api/v1/track/{code}", **from_address("10.0.0.7"))
    for _ in range(4):
        limited.get(f"/api/v1/volunteers/{volunteer['id']}", headers=mine)

    anonymous = limited.get(f"/api/v1/track/{code}", **from_address("10.0.0.7"))
    by_token = limited.get(f"/api/v1/volunteers/{volunteer['id']}", headers=mine)

    assert anonymous.status_code == 429 and by_token.status_code == 429
    assert anonymous.get_json()["message"] == (
        "too many requests for this address (no valid token): 5 per 1 minute (AIDLINE_RATE_LIMIT_ANONYMOUS)"
    )
    assert (
        by_token.get_json()["message"]
        == "too many requests for this token: 4 per 1 minute (AIDLINE_RATE_LIMIT_VOLUNTEER)"
    )
    assert by_token.get_json()["status"] == "Too Many Requests"
