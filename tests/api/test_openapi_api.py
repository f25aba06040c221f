"""The OpenAPI document and the Swagger UI, served locally without any CDN."""

from __future__ import annotations

import re
from typing import Any

import pytest

SPEC_URL = "/api/v1/openapi.json"
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def spec(client) -> dict[str, Any]:
    response = client.get(SPEC_URL)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op) for path, item in spec["paths"].items() for method, op in item.items() if method in METHODS
    ]


def secured(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(p, m, op) for p, m, op in operations(spec) if {"bearerAuth": []} in (op.get("security") or [])]


def test_the_document_is_openapi_3_with_a_title_and_version(spec):
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "Aidline"
    assert spec["info"]["version"]


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/api/v1/catalog", {"get"}),
        ("/api/v1/volunteers", {"get", "post"}),
        ("/api/v1/volunteers/{volunteer_id}", {"get", "patch"}),
        ("/api/v1/volunteers/{volunteer_id}/location", {"put"}),
        ("/api/v1/volunteers/{volunteer_id}/availability", {"put"}),
        ("/api/v1/volunteers/{volunteer_id}/offers", {"get"}),
        ("/api/v1/needs", {"get", "post"}),
        ("/api/v1/needs/{need_id}", {"get"}),
        ("/api/v1/needs/{need_id}/events", {"get"}),
        ("/api/v1/needs/{need_id}/cancel", {"post"}),
        ("/api/v1/needs/{need_id}/assign", {"post"}),
        ("/api/v1/needs/{need_id}/rematch", {"post"}),
        ("/api/v1/needs/{need_id}/defer", {"post"}),
        ("/api/v1/needs/{need_id}/reopen", {"post"}),
        ("/api/v1/needs/{need_id}/progress", {"post"}),
        ("/api/v1/offers/{offer_id}/accept", {"post"}),
        ("/api/v1/offers/{offer_id}/decline", {"post"}),
        ("/api/v1/track/{code}", {"get"}),
        ("/api/v1/track/{code}/feedback", {"post"}),
        ("/healthz", {"get"}),
    ],
)
def test_the_document_lists_every_path_and_method(spec, path, methods):
    assert path in spec["paths"], sorted(spec["paths"])
    assert methods <= set(spec["paths"][path])


def test_every_api_route_of_the_app_is_documented(app, spec):
    documented = {re.sub(r"\{[^}]+\}", "{}", p) for p in spec["paths"]}
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?[^>]+>", "{}", rule.rule)
        if not path.startswith("/api/v1/") or path == SPEC_URL:
            continue
        assert path in documented, f"{rule.rule} is served but not documented"


def test_the_bearer_security_scheme_is_declared(spec):
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]

    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/v1/catalog", "get"),
        ("/api/v1/volunteers", "get"),
        ("/api/v1/volunteers", "post"),
        ("/api/v1/volunteers/{volunteer_id}", "patch"),
        ("/api/v1/needs", "get"),
        ("/api/v1/needs", "post"),
        ("/api/v1/needs/{need_id}", "get"),
        ("/api/v1/needs/{need_id}/cancel", "post"),
        ("/api/v1/offers/{offer_id}/accept", "post"),
    ],
)
def test_token_protected_operations_require_bearer_auth(spec, path, method):
    assert {"bearerAuth": []} in spec["paths"][path][method]["security"]


@pytest.mark.parametrize(("path", "method"), [("/healthz", "get"), ("/api/v1/track/{code}", "get")])
def test_public_operations_do_not_require_a_token(spec, path, method):
    op = spec["paths"][path][method]

    assert not op.get("security"), op.get("security")


def test_every_token_protected_operation_documents_401_and_403(spec):
    ops = secured(spec)
    assert len(ops) >= 15
    for path, method, op in ops:
        for code in ("401", "403"):
            assert code in op["responses"], f"{method.upper()} {path} does not document {code}"


def test_every_operation_that_takes_input_documents_422(spec):
    with_input = [
        (p, m, op)
        for p, m, op in operations(spec)
        if "requestBody" in op and p.startswith("/api/v1/") and "inbound" not in p
    ]
    with_input += [
        (p, m, op) for p, m, op in operations(spec) if p in ("/api/v1/needs", "/api/v1/volunteers") and m == "get"
    ]
    assert len(with_input) >= 10
    for path, method, op in with_input:
        assert "422" in op["responses"], f"{method.upper()} {path} does not document 422"


def test_error_responses_use_the_one_error_schema(spec):
    schemas = spec["components"]["schemas"]
    error = schemas["Error"]
    assert {"code", "status", "message", "errors"} <= set(error["properties"])
    assert {"code", "status"} <= set(error.get("required", []))
    for path, method, op in secured(spec):
        for code in ("401", "403", "422"):
            response = op["responses"].get(code)
            if response is None:
                continue
            ref = response["content"]["application/json"]["schema"]["$ref"]
            assert ref == "#/components/schemas/Error", (path, method, code)


def test_documented_success_codes_match_the_api(spec):
    assert "201" in spec["paths"]["/api/v1/volunteers"]["post"]["responses"]
    assert "201" in spec["paths"]["/api/v1/needs"]["post"]["responses"]
    assert "200" in spec["paths"]["/api/v1/needs"]["get"]["responses"]


def test_query_filters_are_documented(spec):
    volunteers = {p["name"] for p in spec["paths"]["/api/v1/volunteers"]["get"]["parameters"]}
    needs = {p["name"] for p in spec["paths"]["/api/v1/needs"]["get"]["parameters"]}

    assert {"skill", "on_duty", "near", "radius_km", "limit", "cursor"} <= volunteers
    assert {"status", "kind", "priority", "near", "radius_km", "limit", "cursor"} <= needs


# ---- Swagger UI --------------------------------------------------------------------------------------


@pytest.fixture
def docs_html(client) -> str:
    response = client.get("/api/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def test_swagger_ui_is_served_without_a_token(docs_html):
    assert "swagger" in docs_html.lower()
    assert SPEC_URL in docs_html


def test_swagger_ui_loads_its_assets_from_this_server(docs_html):
    assert "/api/docs/assets/swagger-ui-bundle.js" in docs_html
    assert "/api/docs/assets/swagger-ui.css" in docs_html


@pytest.mark.parametrize("word", ["cdn", "unpkg", "jsdelivr", "cloudflare", "googleapis"])
def test_swagger_ui_uses_no_cdn(docs_html, word):
    assert word not in docs_html.lower()


def test_swagger_ui_references_no_remote_url_at_all(docs_html):
    remote = re.findall(r"""(?:src|href)\s*=\s*["']((?:https?:)?//[^"']+)""", docs_html)

    assert remote == []


def test_every_asset_the_swagger_ui_page_references_is_served(client, docs_html):
    assets = re.findall(r"""(?:src|href)\s*=\s*["'](/api/docs/assets/[^"']+)""", docs_html)
    assert assets, "the page references local assets"
    for url in assets:
        response = client.get(url)
        assert response.status_code == 200, url
        assert len(response.get_data()) > 1000, url


def test_the_swagger_ui_bundle_is_served_locally(client):
    response = client.get("/api/docs/assets/swagger-ui-bundle.js")

    assert response.status_code == 200
    assert "javascript" in response.mimetype
    assert b"SwaggerUIBundle" in response.get_data()


@pytest.mark.parametrize(
    "url", ["/api/docs/assets/nope.js", "/api/docs/assets/../../../etc/passwd", "/api/docs/assets/%2e%2e/x"]
)
def test_unknown_or_escaping_asset_paths_are_404(client, url):
    response = client.get(url)

    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert b"root:" not in response.get_data()
