"""Schemathesis: every operation in /openapi.json, fed generated requests, answers as documented.

The operations are listed from the document itself (built from default settings, no index
needed) so each one is its own test; the requests go in-process through WSGI to the sample
app (no rate limit, writes disabled, so write operations must answer as documented for a
client without a valid token). Valid requests (``positive``) and invalid ones (``negative``,
for operations that take any input) both go through every default check: no 5xx, documented
status codes, content types, headers and response schemas, invalid input rejected.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from search_service.config import default_settings
from search_service.web.openapi import openapi_document

_DOCUMENT = openapi_document(default_settings())
# Negative cases need something that can be invalid: a query parameter or a body (a string path
# parameter takes any text).
OPERATIONS = [(path, method.upper(), bool(op.get("requestBody") or any(
    p["in"] != "path" for p in op.get("parameters", []))))
              for path, item in _DOCUMENT["paths"].items() for method, op in item.items()]
CASES = [pytest.param(path, method, mode, id=f"{method} {path} {mode.value}")
         for path, method, has_input in OPERATIONS
         for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
         if mode is GenerationMode.POSITIVE or has_input]
# Rules JSON Schema cannot state, so schema-valid requests that break them get a (documented) 400:
# date_from after date_to, page x page_size beyond max_result_window, more than max_query_terms
# words, leading wildcards, a prefix expanding past max_prefix_terms.
CROSS_FIELD_RULES = {("/api/search", "GET"), ("/api/suggest", "GET")}
# POST /api/click is a fire-and-forget beacon: JSON Schema counts 77.0 as an integer while the
# server wants rank written 77, and malformed beacons are dropped with 204 rather than refused.
LENIENT = {("/api/click", "POST"): [positive_data_acceptance, negative_data_rejection]}


@pytest.fixture(scope="module")
def api_schema(app):
    """The app's own OpenAPI document, served by the app and driven through WSGI."""
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


def test_every_route_is_documented(app):
    """Each API route of the app is in the document (pages, static and analytics pages aside)."""
    documented = {path.replace("{doc_id}", "<path:doc_id>") for path in _DOCUMENT["paths"]}
    api_routes = {rule.rule for rule in app.url_map.iter_rules()
                  if rule.rule.startswith("/api/") or rule.rule in ("/healthz", "/metrics", "/openapi.json")}
    assert api_routes - documented == set()


@pytest.mark.parametrize(("path", "method", "mode"), CASES)
def test_operation_conforms(api_schema, path, method, mode):
    operation = api_schema[path][method]
    excluded = list(LENIENT.get((path, method), []))
    if (path, method) in CROSS_FIELD_RULES:
        excluded.append(positive_data_acceptance)

    @given(data=st.data())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(data):
        case = data.draw(operation.as_strategy(generation_mode=mode))
        case.call_and_validate(excluded_checks=excluded)

    run()
