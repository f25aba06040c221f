"""Aidline's flask-smorest Blueprint: a JSON parser that answers 400 to any body it cannot parse."""

from __future__ import annotations

import typing

import flask
import flask_smorest
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request


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


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = AidlineParser()
