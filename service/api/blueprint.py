"""Aidline's flask-smorest Blueprint: a JSON parser that answers 400 to any body it cannot parse, and the
answers every operation can give through the app's shared machinery (JSON bodies, body size, idempotent
retries, rate limits, Redis), documented on each operation."""

from __future__ import annotations

import functools
import typing

import flask
import flask_smorest
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request

from service.api.schemas import ErrorSchema
from service.exceptions import InvalidInput


class AidlineParser(FlaskParser):
    """Bodies nested too deep or numbers too long for Python's parser are a 400 like bad JSON."""

    def _raw_load_json(self, req: flask.Request) -> typing.Any:
        if not is_json_request(req):
            return core.missing
        try:
            return core.parse_json(req.get_data(cache=True))
        except (RecursionError, ValueError) as exc:
            if isinstance(exc, UnicodeDecodeError) or type(exc).__name__ == "JSONDecodeError":
                raise
            abort(400, exc=exc, messages={"json": ["JSON body nested too deep or with a number too long."]})


IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 200},
    "description": "Retrying with the same key and body returns the first answer (marked Idempotent-Replayed: "
    "true) and creates nothing; the same key with another body is a 422 (the same JSON in another key order or "
    "spacing is the same body). A body refused as sent (400, 413, 415, 422) leaves the key free for the corrected "
    "body. Keys are kept 24 hours per token and path.",
}

SHARED_ANSWERS = {
    400: "The body is not valid JSON (or is nested too deep)",
    409: "A request with the same Idempotency-Key is still being processed; retry shortly",
    413: "The body is larger than {size}",
    415: "The body is not JSON (send Content-Type: application/json)",
    422: "The Idempotency-Key is longer than 200 characters, or was already used with another body",
    429: "Over the rate limit of this token's role (or, without a token, of this address); Retry-After says when "
    "to try again",
    503: "The data store is unavailable; nothing was changed, retry shortly (Retry-After)",
}


def bulk_items(app: flask.Flask) -> str | None:
    """The list of records in the body when this request is for an operation marked `Blueprint.bulk`."""
    view = app.view_functions.get(flask.request.endpoint or "")
    handler = getattr(getattr(view, "view_class", None), flask.request.method.lower(), None)
    items: str | None = getattr(handler, "bulk_items", None)
    return items


def size_text(size: int) -> str:
    """A body limit in words: 65536 is '64 KB', 4194304 is '4 MB'."""
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"


class Blueprint(flask_smorest.Blueprint):
    """`rate_limited`: its operations count against the rate limit; `uses_redis`: they read Redis (503 when it
    is down); `form_bodies`: they also take form posts, so a body that is not JSON is not a 415."""

    ARGUMENTS_PARSER = AidlineParser()

    def __init__(
        self,
        *args: typing.Any,
        rate_limited: bool = True,
        uses_redis: bool = True,
        form_bodies: bool = False,
        **kwargs: typing.Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.rate_limited = rate_limited
        self.uses_redis = uses_redis
        self.form_bodies = form_bodies
        self._prepare_doc_cbks.append(self._prepare_shared_doc)

    def arguments(
        self, schema: typing.Any, *, location: str = "json", required: bool = True, **kwargs: typing.Any
    ) -> typing.Any:
        """As flask-smorest's; and a JSON body documented as required must be sent: a request without one is
        a 422 (naming the missing fields when the schema has required ones), never taken for an empty object."""
        decorator = super().arguments(schema, location=location, required=required, **kwargs)
        if location != "json" or not required:
            return decorator

        def body_required(func: typing.Callable[..., typing.Any]) -> typing.Any:
            @functools.wraps(func)
            def parsed(*args: typing.Any, **kw: typing.Any) -> typing.Any:
                if not flask.request.get_data(cache=True):
                    raise InvalidInput("send the body as JSON", errors={"json": ["Missing request body."]})
                return func(*args, **kw)

            return decorator(parsed)

        return body_required

    @staticmethod
    def bulk(items: str) -> typing.Callable[[typing.Callable[..., typing.Any]], typing.Any]:
        """Mark an operation taking many records at once, as the list `items` of its body: the body may be up to
        the app's MAX_BULK_CONTENT_LENGTH instead of MAX_CONTENT_LENGTH (see create_app), and each record counts
        against the rate limit (see ops.init_rate_limits)."""

        def decorator(func: typing.Callable[..., typing.Any]) -> typing.Any:
            func.bulk_items = items  # type: ignore[attr-defined]
            func._apidoc = {**getattr(func, "_apidoc", {}), "bulk_items": items}  # type: ignore[attr-defined]
            return func

        return decorator

    def _prepare_shared_doc(
        self,
        doc: dict[str, typing.Any],
        doc_info: dict[str, typing.Any],
        *,
        app: flask.Flask,
        method: str,
        **_: typing.Any,
    ) -> dict[str, typing.Any]:
        """Document what the app answers around every view: see create_app's before_request hooks and ops."""
        responses = doc.setdefault("responses", {})

        def answer(code: int, description: str) -> None:
            if code in responses and isinstance(responses[code], dict):
                if description not in responses[code]["description"]:
                    responses[code]["description"] += f"; or: {description[0].lower()}{description[1:]}"
                return
            responses[code] = {
                "description": description,
                "content": {"application/json": {"schema": ErrorSchema}},
            }

        body = doc.get("requestBody")
        for content in (body or {}).get("content", {}).values():
            rules = getattr(content.get("schema"), "BODY_RULES", None)
            if rules:
                content["schema"] = {"allOf": [content["schema"]], **rules}
        if method in ("post", "put", "patch"):
            if body is not None or self.form_bodies:  # form_bodies: the body is documented by hand, as JSON or form
                answer(400, SHARED_ANSWERS[400])
            limit = app.config["MAX_BULK_CONTENT_LENGTH" if doc_info.get("bulk_items") else "MAX_CONTENT_LENGTH"]
            answer(413, SHARED_ANSWERS[413].format(size=size_text(limit)))
            if not self.form_bodies:
                answer(415, SHARED_ANSWERS[415])
        if method == "post":
            doc.setdefault("parameters", []).append(dict(IDEMPOTENCY_KEY))
            answer(409, SHARED_ANSWERS[409])
            answer(422, SHARED_ANSWERS[422])
        if self.rate_limited:
            answer(429, SHARED_ANSWERS[429])
        if self.uses_redis:
            answer(503, SHARED_ANSWERS[503])
        return doc
