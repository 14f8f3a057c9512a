"""Property-based tests of every /api/v1 operation against its own OpenAPI document.

schemathesis generates requests from the document and checks each answer: no 5xx, a
documented status code, and a body matching the documented schema (problem+json included).
Bounded (25 examples per operation, derandomized) to keep the run well under 90 seconds.
"""

from __future__ import annotations

import pytest
import schemathesis
from api_helpers import POINTS, STAMPS, make_shop, new_member, new_program
from conftest import PASS_TYPE_ID, TEAM_ID, _empty_all_tables
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from walletpass.api import views
from walletpass.api.framework import _openapi_path
from walletpass.app import create_app
from walletpass.config import Settings
from walletpass.resources import PASS_TEMPLATES_DIR
from walletpass.runtime import Runtime

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def api_schema(database_url, certs_dir, tmp_path_factory):  # type: ignore[no-untyped-def]
    """One app and data set for the whole module: fuzzing ~50 operations with a fresh
    database each would spend most of the 90 second budget on set-up."""
    settings = Settings(
        home=tmp_path_factory.mktemp("fuzz"),
        database_url=database_url,
        public_url="https://wallet.example.test",
        secret_key="test-secret-key-not-for-production",
        certs_dir=certs_dir,
        templates_dir=PASS_TEMPLATES_DIR,
        pass_type_id=PASS_TYPE_ID,
        team_id=TEAM_ID,
        embedded_worker=False,
    )
    runtime = Runtime.create(settings)
    app = create_app(runtime=runtime, start_worker=False)
    app.config["TESTING"] = True
    # Hundreds of requests in seconds would otherwise meet the (documented) 429.
    app.config["WALLETPASS_API_RATE_LIMIT"] = "1000000/second"
    client = app.test_client()
    shop = make_shop(runtime, client)
    # A little data, so that generated ids sometimes hit real rows (1, 2, 3...).
    points = new_program(shop, "points", POINTS)
    stamps = new_program(shop, "stamps", STAMPS)
    for program in (points, stamps):
        member = new_member(shop, program["id"])
        shop.admin.post("/rewards", {"program_id": program["id"], "name": "R", "cost_points": 1})
        shop.crm.post(
            f"/members/{member['id']}/transactions",
            {"type": "purchase", "amount": "12.50", "receipt_id": f"seed-{program['id']}"},
        )
    offer = shop.admin.post(
        "/offers",
        {"slug": "st-offer", "title": "O", "discount": {"type": "percent", "value": 10}},
    )
    shop.crm.post("/coupons", {"offer_id": offer["id"]})
    shop.crm.post("/webhook-endpoints", {"url": "https://a.test/", "events": ["member.created"]})
    shop.crm.post("/campaigns", {"name": "C", "message": "M"})
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    schema.config.generation.update(modes=["positive"], deterministic=True)
    operations = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        operations[operation.label] = operation
    yield operations, {"Authorization": f"Bearer {shop.keys['admin']}"}
    _empty_all_tables(runtime)
    runtime.close()


# One test per operation, named by its label; the list comes from the framework's own
# registry so that a new operation is fuzzed without touching this file. (schemathesis's
# lazy pytest loader is not compatible with the installed pytest, hence plain hypothesis.)
LABELS = [f"{op.method} {_openapi_path(op.path)}" for op in views.api.operations]


@pytest.mark.parametrize("label", LABELS)
def test_operation_conforms_to_the_openapi_document(api_schema, label):  # type: ignore[no-untyped-def]
    operations, headers = api_schema
    operation = operations[label]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=25,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):  # type: ignore[no-untyped-def]
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()
