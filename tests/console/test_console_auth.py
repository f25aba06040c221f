"""Signing in to the console, the session cookie, CSRF and the Content-Security-Policy."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Tokens
from tests.console.conftest import Console

PAGES = [
    "/console/",
    "/console/board",
    "/console/needs/new",
    "/console/volunteers",
    "/console/map",
    "/console/map/data",
    "/console/incidents",
    "/console/incidents/inc_x",
    "/console/needs/need_x",
]
ACTIONS = [
    "/console/needs/need_x/assign",
    "/console/needs/need_x/rematch",
    "/console/needs/need_x/defer",
    "/console/needs/need_x/cancel",
    "/console/needs/need_x/reopen",
    "/console/needs/need_x/priority",
    "/console/needs/new",
    "/console/volunteers/vol_x/duty",
]


def test_a_dispatcher_token_signs_in_and_the_board_opens(anonymous: Console, tokens: Tokens) -> None:
    response = anonymous.sign_in(tokens.token("dispatcher"))

    assert response.status_code == 303
    assert response.headers["Location"].endswith("/console/")
    board = anonymous.html("/console/")
    assert 'data-testid="board"' in board
    assert 'data-testid="logout"' in board


@pytest.mark.parametrize("role", ["volunteer", "intake", "captain"])
def test_volunteer_intake_and_captain_tokens_are_refused_with_a_clear_message(
    anonymous: Console, tokens: Tokens, make_volunteer: Any, role: str
) -> None:
    volunteer_id = make_volunteer()["id"] if role in ("volunteer", "captain") else None

    response = anonymous.sign_in(tokens.token(role, volunteer_id))

    assert response.status_code == 403, "a token known to the service, of a role the console is not for"
    assert f"A {role} token cannot open the console" in response.get_data(as_text=True)
    assert anonymous.get("/console/").status_code == 302


def test_an_unknown_token_is_refused(anonymous: Console) -> None:
    response = anonymous.sign_in("not-a-token")

    assert response.status_code == 401
    assert "unknown or has been revoked" in response.get_data(as_text=True)


@pytest.mark.parametrize("path", PAGES)
def test_every_page_needs_the_session(anonymous: Console, path: str) -> None:
    response = anonymous.get(path)

    assert response.status_code == 302
    assert response.headers["Location"].endswith("/console/login")


def test_htmx_requests_without_a_session_are_sent_to_sign_in(anonymous: Console) -> None:
    response = anonymous.get("/console/board", headers={"HX-Request": "true"})

    assert response.headers["HX-Redirect"] == "/console/login"
    assert 'data-testid="board"' not in response.get_data(as_text=True)


def test_the_session_cookie_is_httponly_samesite_strict_and_holds_no_token(anonymous: Console, tokens: Tokens) -> None:
    token = tokens.token("dispatcher")
    response = anonymous.sign_in(token)

    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("aidline_console="))
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP here
    assert token not in cookie
    assert token not in response.headers.get("Location", "")


def test_the_session_cookie_is_secure_over_https(app: Any, tokens: Tokens) -> None:
    secure = Console(app.test_client())
    page = secure.client.get("/console/login", base_url="https://aid.test")
    from tests.console.conftest import csrf_of

    response = secure.client.post(
        "/console/login",
        data={"token": tokens.token("dispatcher"), "csrf_token": csrf_of(page.get_data(as_text=True))},
        base_url="https://aid.test",
        headers={"Referer": "https://aid.test/console/login"},
    )

    assert response.status_code == 303
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("aidline_console="))
    assert "Secure" in cookie


def test_behind_a_proxy_the_cookie_is_secure_when_the_proxy_says_https(
    settings: Any, deps: Any, tokens: Tokens
) -> None:
    import dataclasses

    from service import create_app
    from tests.console.conftest import csrf_of

    proxied = dataclasses.replace(settings, proxy_hops=1)
    app = create_app({"TESTING": True, "SETTINGS": proxied, "DEPS": dataclasses.replace(deps, settings=proxied)})
    client = app.test_client()
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    page = client.get("/console/login", headers=forwarded)

    response = client.post(
        "/console/login",
        data={"token": tokens.token("dispatcher"), "csrf_token": csrf_of(page.get_data(as_text=True))},
        headers={**forwarded, "Referer": "https://localhost/console/login"},
    )

    assert response.status_code == 303
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("aidline_console="))
    assert "Secure" in cookie


def test_every_process_signs_sessions_with_the_same_key_kept_in_redis(settings: Any, deps: Any, tokens: Tokens) -> None:
    from service import create_app

    first, second = (create_app({"TESTING": True, "SETTINGS": settings, "DEPS": deps}) for _ in range(2))
    signed = Console(first.test_client())
    signed.sign_in(tokens.token("dispatcher"))
    cookie = signed.client.get_cookie("aidline_console", path="/console")
    other = second.test_client()
    other.set_cookie("aidline_console", cookie.value, path="/console")

    assert other.get("/console/").status_code == 200
    assert deps.store.tokens.secret("console-session") == first.secret_key == second.secret_key


def test_a_revoked_token_ends_its_console_session(console: Console, tokens: Tokens, deps: Any) -> None:
    assert console.get("/console/").status_code == 200

    deps.store.tokens.revoke(tokens.token("dispatcher"))

    assert console.get("/console/").status_code == 302


def test_sign_out_ends_the_session(console: Console) -> None:
    response = console.post("/console/logout")

    assert response.status_code == 303
    assert console.get("/console/").status_code == 302


def test_a_post_without_the_csrf_token_is_refused(console: Console, make_need: Any) -> None:
    need = make_need()

    response = console.client.post(f"/console/needs/{need['id']}/defer", data={"reason": "no token"})

    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    assert console.client.post("/console/login", data={"token": "x"}).status_code == 400
    assert (
        console.client.post(
            f"/console/needs/{need['id']}/defer", data={"reason": "wrong", "csrf_token": "forged"}
        ).status_code
        == 400
    )


def test_the_json_api_is_not_asked_for_csrf_tokens(client: Any, tokens: Tokens, make_need: Any) -> None:
    need = make_need()

    response = client.post(f"/api/v1/needs/{need['id']}/defer", json={"reason": "r"}, headers=tokens.dispatcher)

    assert response.status_code == 200


def test_pages_carry_a_content_security_policy_without_inline_script(console: Console) -> None:
    response = console.get("/console/")

    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self';" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_no_page_has_inline_script_or_event_handler_attributes(console: Console, make_need: Any) -> None:
    import re

    need = make_need()
    for path in [
        "/console/",
        "/console/board",
        f"/console/needs/{need['id']}",
        "/console/needs/new",
        "/console/volunteers",
        "/console/map",
        "/console/incidents",
    ]:
        html = console.html(path)
        for script in re.findall(r"<script[^>]*>", html):
            assert "src=" in script or 'type="application/json"' in script, (path, script)
        assert not re.search(r"\son[a-z]+\s*=", html), path
        assert "javascript:" not in html, path


def test_the_tile_servers_origin_is_allowed_for_images_when_configured(settings: Any, deps: Any) -> None:
    import dataclasses

    from service import create_app

    tiled = dataclasses.replace(settings, map_tiles_url="https://{s}.tiles.example.org/{z}/{x}/{y}.png")
    app = create_app({"TESTING": True, "SETTINGS": tiled, "DEPS": dataclasses.replace(deps, settings=tiled)})
    client = Console(app.test_client())
    response = client.get("/console/login")

    assert "img-src 'self' data: https://*.tiles.example.org;" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("path", ACTIONS)
def test_ops_reads_but_cannot_act(ops_console: Console, path: str, make_need: Any, make_volunteer: Any) -> None:
    need, volunteer = make_need(), make_volunteer()
    path = path.replace("need_x", need["id"]).replace("vol_x", volunteer["id"])
    before = ops_console.html(f"/console/needs/{need['id']}")
    assert 'data-testid="action-assign"' not in before

    response = ops_console.post(
        path,
        {
            "reason": "r",
            "volunteer_id": volunteer["id"],
            "priority": "low",
            "on_duty": "true",
            "kind": "water_delivery",
            "lat": "46.3",
            "lon": "132.2",
        },
    )

    assert response.status_code == 403
    text = response.get_data(as_text=True)
    assert "the ops role may not do this" in text or "may only act on its own volunteer record" in text


def test_a_signed_in_console_spends_its_tokens_rate_budget(console: Console, deps: Any, tokens: Tokens) -> None:
    response = console.get("/console/board")

    assert response.status_code == 200
    assert response.headers["X-RateLimit-Limit"] == deps.settings.rate_limit_dispatcher.split("/")[0]
