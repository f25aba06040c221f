"""Bearer-token authentication and role checks at the HTTP edge."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, g, request
from flask_smorest import Blueprint

from service.api.schemas import ErrorSchema
from service.deps import Deps
from service.exceptions import Forbidden, Unauthorized
from service.models import Principal, Role


def deps() -> Deps:
    """The Deps this app was built with."""
    built: Deps = current_app.extensions["aidline"]
    return built


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def principal_for(token: str | None) -> Principal:
    """The principal a token stands for; 401 when it is missing, unknown or revoked.

    Looked up once per request: the rate limiter asks first (for the role's limit), the role check after it."""
    if not token:
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    if len(token) > 200:
        raise Unauthorized("invalid or revoked token")
    known: dict[str, Principal | None] = g.setdefault("principals", {})
    if token not in known:
        record = deps().store.tokens.record(token)
        known[token] = (
            Principal(
                role=Role(record["role"]),
                token_id=record["id"],
                volunteer_id=record.get("volunteer_id") or None,
                grids=tuple(filter(None, record.get("grids", "").split(","))),
            )
            if record is not None
            else None
        )
    principal = known[token]
    if principal is None:
        raise Unauthorized("invalid or revoked token")
    return principal


def current_principal() -> Principal:
    """Who is calling, as `requires` found it."""
    principal: Principal = g.principal
    return principal


def requires(blp: Blueprint, *roles: Role) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Authenticate the caller and check the role before anything else, and document it."""
    names = ", ".join(r.value for r in roles)

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        func = blp.doc(security=[{"bearerAuth": []}], description=f"Roles: {names}.")(func)
        func = blp.alt_response(401, schema=ErrorSchema, description="Missing, invalid or revoked token")(func)
        func = blp.alt_response(403, schema=ErrorSchema, description=f"Allowed roles: {names}")(func)

        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = principal_for(bearer_token())
            if principal.role not in roles:
                raise Forbidden(f"the {principal.role.value} role may not do this (allowed: {names})")
            g.principal = principal
            return func(*args, **kwargs)

        return wrapper

    return decorator


def errors(blp: Blueprint, *codes: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Document further error answers of an endpoint."""
    descriptions = {
        404: "No such record (or not visible to this token)",
        409: "Not allowed in the record's current status; the message names it",
        422: "Invalid input; errors names each field",
        503: "A service Aidline depends on is unavailable; nothing was changed",
    }

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        for code in codes:
            func = blp.alt_response(code, schema=ErrorSchema, description=descriptions[code])(func)
        return func

    return decorator
