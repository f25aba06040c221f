"""Aidline: volunteer dispatch. The Flask app lives in service.api; the rest is framework-free."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The application factory (gunicorn: 'service:create_app()')."""
    from service.api import create_app as factory

    return factory(config)
