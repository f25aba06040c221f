"""Aidline: volunteer dispatch. The Flask app lives in service.api and service.console; the rest is framework-free."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The application factory (gunicorn: 'service:create_app()'): the API, and the console beside it."""
    from service import console
    from service.api import create_app as factory

    app = factory(config)
    console.init_app(app, app.extensions["aidline"])
    return app
