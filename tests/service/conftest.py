"""Fixtures the service tests share."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def get_need(client: Any, tokens: Any) -> Any:
    def _get(need_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        response = client.get(f"/api/v1/needs/{need_id}", headers=headers or tokens.dispatcher)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    return _get
