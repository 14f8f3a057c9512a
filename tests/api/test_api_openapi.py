"""The OpenAPI document is valid OpenAPI 3.1, complete, and the docs page renders it."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from walletpass.api import views

try:  # the official validator, when installed
    from openapi_spec_validator import validate as validate_spec
except ImportError:  # pragma: no cover - depends on the environment
    validate_spec = None


@pytest.fixture
def doc(client):  # type: ignore[no-untyped-def]
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    return r.json


def test_document_is_valid_openapi_31(doc):
    assert doc["openapi"] == "3.1.0"
    if validate_spec is not None:
        validate_spec(doc)
    # The OpenAPI 3.1 meta-schema (as published by the OAI) that schemathesis ships.
    from schemathesis.specs.openapi.definitions import OPENAPI_31

    errors = list(jsonschema.Draft202012Validator(OPENAPI_31).iter_errors(doc))
    assert errors == [], [e.message for e in errors[:5]]
    for schema in doc["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_every_ref_resolves(doc):
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(doc)))
    assert refs
    assert refs <= set(doc["components"]["schemas"])


def test_every_operation_is_documented_with_responses_and_problem_types(doc):
    ops = [(path, m, op) for path, item in doc["paths"].items() for m, op in item.items()]
    assert len(ops) == len(views.api.operations)
    assert len({op["operationId"] for _, _, op in ops}) == len(ops)
    known = {p["type"] for p in doc["x-problem-types"]}
    for path, method, op in ops:
        assert op["summary"], (path, method)
        assert op["tags"], (path, method)
        success = [s for s in op["responses"] if s.startswith("2")]
        assert len(success) == 1, (path, method)
        for status in ("401", "403", "422", "429"):
            assert status in op["responses"], (path, method, status)
        if "{" in path:
            assert "404" in op["responses"], (path, method)
        for status, resp in op["responses"].items():
            if status.startswith(("4", "5")):
                assert "application/problem+json" in resp["content"]
                for kind in re.findall(r"`(/problems/[^`]+)`", resp["description"]):
                    assert kind in known
        if method in ("post", "patch", "delete", "put"):
            assert any(p["name"] == "Idempotency-Key" for p in op["parameters"])
    assert doc["servers"] == [{"url": "https://wallet.example.test/api/v1"}]
    for required in ("/programs", "/members", "/scans", "/stats", "/rewards", "/offers",
                     "/members/{member_id}/transactions", "/coupons", "/campaigns",
                     "/webhook-endpoints"):  # fmt: skip
        assert required in doc["paths"]


def test_list_endpoints_are_paginated(doc):
    for path, item in doc["paths"].items():
        get = item.get("get")
        if get is None:
            continue
        ref = get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        schema = doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]
        if "next_cursor" in schema.get("properties", {}):
            names = {p["name"]: p for p in get["parameters"]}
            assert names["limit"]["schema"]["maximum"] == 200, path
            assert names["limit"]["schema"]["default"] == 50, path
            assert "cursor" in names, path


def test_member_create_documents_the_pass_links(doc):
    created = doc["paths"]["/members"]["post"]["responses"]["201"]
    ref = created["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert "passes" in doc["components"]["schemas"][ref]["properties"]
    links = doc["components"]["schemas"]["PassLinks"]["properties"]
    assert {"apple_pkpass_url", "google_save_url", "landing_url"} <= set(links)


def test_docs_page_renders_from_the_document(client, doc):
    r = client.get("/api/docs")
    assert r.status_code == 200
    assert r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    assert "<script" not in html
    for path, item in doc["paths"].items():
        assert path in html
        for op in item.values():
            assert f'id="{op["operationId"]}"' in html
    for problem in doc["x-problem-types"]:
        assert problem["type"] in html
    for name in doc["components"]["schemas"]:
        assert f'id="schema-{name}"' in html
