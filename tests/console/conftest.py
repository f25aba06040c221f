"""Fixtures of the console's test-client tests: a signed-in client per role, and the CSRF token of a page."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import Tokens

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


class Console:
    """A test client signed in to the console (or not), posting forms with the page's CSRF token."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def csrf(self, path: str = "/console/login") -> str:
        return csrf_of(self.client.get(path).get_data(as_text=True))

    def sign_in(self, token: str) -> Any:
        return self.client.post("/console/login", data={"token": token, "csrf_token": self.csrf()})

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict[str, Any] | None = None, *, htmx: bool = False) -> Any:
        headers = {"HX-Request": "true"} if htmx else {}
        return self.client.post(path, data={**(data or {}), "csrf_token": self.csrf("/console/")}, headers=headers)

    def html(self, path: str) -> str:
        response = self.client.get(path)
        assert response.status_code == 200, response.get_data(as_text=True)
        return str(response.get_data(as_text=True))


@pytest.fixture
def console(app: Any, tokens: Tokens) -> Console:
    """A client signed in with a dispatcher token."""
    signed = Console(app.test_client())
    assert signed.sign_in(tokens.token("dispatcher")).status_code == 303
    return signed


@pytest.fixture
def ops_console(app: Any, tokens: Tokens) -> Console:
    """A client signed in with an ops token (read only)."""
    signed = Console(app.test_client())
    assert signed.sign_in(tokens.token("ops")).status_code == 303
    return signed


@pytest.fixture
def anonymous(app: Any) -> Console:
    return Console(app.test_client())
