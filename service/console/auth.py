"""Signing in to the console: a dispatcher or ops token once, then a session cookie holding the token's id.

The token itself is never kept (not in the cookie, the URL or the browser's storage): the session names the
token's id, which is looked up on every request, so revoking the token ends its console sessions too."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, g, redirect, request, session, url_for
from flask_babel import gettext

from service.deps import Deps
from service.models import Principal, Role

LANG_COOKIE = "aidline_lang"
LANGUAGES = ["en", "zh"]
CONSOLE_ROLES = (Role.DISPATCHER, Role.OPS)


def deps() -> Deps:
    built: Deps = current_app.extensions["aidline"]
    return built


class SignInRefused(Exception):
    """The token cannot open the console; the message says why, in the reader's language. `status` is 401 for a
    token nobody knows, 403 for a known token whose role may not open the console."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


def sign_in(token: str) -> Principal:
    """Check the token and start a session for it; raises SignInRefused naming why not."""
    token = token.strip()
    record = deps().store.tokens.record(token) if token and len(token) <= 200 else None
    if record is None:
        raise SignInRefused(gettext("This token is unknown or has been revoked."))
    role = Role(record["role"])
    if role not in CONSOLE_ROLES:
        raise SignInRefused(
            gettext(
                "A %(role)s token cannot open the console: sign in with a dispatcher token (ops: read only).",
                role=role.value,
            ),
            status=403,
        )
    session.clear()
    session.permanent = True
    session["token_id"] = record["id"]
    session["role"] = role.value
    return Principal(role=role, token_id=record["id"])


def sign_out() -> None:
    session.clear()


def session_principal() -> Principal | None:
    """Who is signed in on this request (None when nobody is, or their token was revoked)."""
    if "console_principal" in g:
        found: Principal | None = g.console_principal
        return found
    principal = None
    token_id = session.get("token_id")
    if isinstance(token_id, str) and token_id:
        record = deps().store.tokens.record_by_id(token_id)
        if record is not None and Role(record["role"]) in CONSOLE_ROLES:
            principal = Principal(role=Role(record["role"]), token_id=token_id)
    g.console_principal = principal
    return principal


def signed_in(view: Callable[..., Any]) -> Callable[..., Any]:
    """The page needs a session: otherwise to the sign-in page (htmx requests are told to go there)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if session_principal() is None:
            session.pop("token_id", None)
            target = url_for("console.login")
            if request.headers.get("HX-Request"):
                return "", 401, {"HX-Redirect": target}
            return redirect(target)
        return view(*args, **kwargs)

    return wrapper


def principal() -> Principal:
    """The signed-in principal of a view decorated with signed_in."""
    found = session_principal()
    assert found is not None
    return found
