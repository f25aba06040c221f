"""Reading 422 answers in tests: which fields the error format names."""

from __future__ import annotations

from typing import Any


def failed_fields(response: Any) -> set[str]:
    """Dotted names of the fields named in a 422's `errors`, without the json/query location."""
    names: set[str] = set()

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}.{key}" if prefix else str(key))
        else:
            names.add(prefix)

    body = response.get_json()
    for location, errors in (body.get("errors") or {}).items():
        assert location in ("json", "query"), body
        walk(errors, "")
    return names


def assert_rejects(response: Any, field: str) -> None:
    """422 in the error format, and `errors` names the field (or something inside it)."""
    body = response.get_json()
    assert response.status_code == 422, body
    assert body["code"] == 422
    assert body["status"] == "Unprocessable Entity"
    names = failed_fields(response)
    assert any(n == field or n.startswith(field + ".") for n in names), (field, body)
