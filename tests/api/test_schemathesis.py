"""Property-based tests of every /api/v1 operation against its own OpenAPI document.

schemathesis generates requests from the document and checks each answer: no 5xx, a
documented status code, and a body matching the documented schema (problem+json included).
Bounded (25 examples per operation, derandomized) to keep the run well under 90 seconds.
"""

from __future__ import annotations

import pytest
import schemathesis
from fuzz_app import fuzzed_app
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from walletpass.api import views
from walletpass.api.framework import _openapi_path

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def api_schema(database_url, certs_dir, tmp_path_factory):  # type: ignore[no-untyped-def]
    with fuzzed_app(database_url, certs_dir, tmp_path_factory.mktemp("fuzz")) as (app, shop, _):
        schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
        schema.config.generation.update(modes=["positive"], deterministic=True)
        operations = {}
        for result in schema.get_all_operations():
            operation = result.ok()
            operations[operation.label] = operation
        yield operations, {"Authorization": f"Bearer {shop.keys['admin']}"}


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
