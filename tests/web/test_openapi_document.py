"""Schemathesis: every operation in /openapi.json, fed generated requests, answers as documented.

The app serves a throwaway index of the samples with write tokens on, so the write API is
exercised for real (each acknowledged write is a commit). Schemathesis' own engine, the one
``st run`` drives, runs every phase through WSGI: explicit examples; coverage (boundaries of
every limit, missing parameters and credentials, methods a path does not have); fuzzing (valid
and invalid requests); stateful sequences (an article written, read, deleted). **Every check**
runs on every operation: no 5xx, documented status codes, content types, headers and schemas,
valid requests accepted and invalid ones refused, 401 with ``WWW-Authenticate`` without
credentials, 405 with ``Allow`` for a method a path lacks, writes that are visible and deletes
that are gone.

JSON Schema cannot state a few rules (two parameters together, the query syntax, ids unique in
a batch); the document states them in words. A schema-valid request may be refused only with a
400 for one of those, and only when it really breaks it: :func:`documented_refusal` checks that,
independently of the server, and the acceptance check applies to every other request.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status
from schemathesis.engine import events as engine_events
from schemathesis.specs.openapi.checks import positive_data_acceptance

from search_service.config import default_settings
from search_service.engine.syntax import check_query
from search_service.errors import InvalidParameter
from search_service.web import close_app, create_app
from search_service.web.openapi import openapi_document

from ..helpers import SAMPLES, LiveServer, build_index, make_settings

TOKEN = "conformance-token"
#: The settings of the server under test (the checks below run inside Schemathesis' engine).
_SERVED: dict = {}
# Small enough that the coverage phase's longest batch (maxItems + 1) stays quick to send.
BATCH_MAX = 4


def documented_refusal(case, response) -> str | None:
    """Why a schema-valid request was refused with a 400, when the reason is a rule the document
    states in words and the request really breaks it (checked here, not taken from the server);
    None when the refusal is not explained (a mismatch between the document and the code)."""
    if response.status_code != 400 or case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    error = response.json()["error"]
    param, message = error.get("param"), error["message"]
    settings = _SERVED["settings"]
    query = case.query or {}
    if case.path == "/api/search" and param == "page" and "max_result_window" in message:
        page = int(str(query.get("page", "")).strip() or 1)
        page_size = int(str(query.get("page_size", "")).strip() or settings.max_page_size and 10)
        return "page × page_size beyond max_result_window" if page * page_size > settings.max_result_window \
            else None
    if case.path == "/api/search" and param == "date_from" and "is after date_to" in message:
        return "date_from after date_to" if str(query["date_from"]).strip() > str(query["date_to"]).strip() \
            else None
    if param == "q":
        q = str(case.body.get("q") if case.path == "/api/click" else query.get("q")).strip()
        if "max_prefix_terms" in message:  # depends on the index: the message names the word*
            return "a prefix matching too many index words" if "*" in q else None
        try:
            check_query(q, settings.max_query_terms)
        except InvalidParameter as exc:
            return f"a query rule: {exc.message}" if exc.message == message else None
        return None
    if case.path == "/api/documents" and param == "body" and isinstance(case.body, list):
        ids = Counter(item["id"] for item in case.body)
        problems = error.get("problems") or [{"reason": ""}]
        duplicated = all("duplicate id" in problem["reason"] for problem in problems)
        return "ids repeated in a batch" if duplicated and max(ids.values()) > 1 else None
    return None


@schemathesis.check
def documented_acceptance(ctx, response, case):
    """``positive_data_acceptance``, except for a 400 :func:`documented_refusal` explains."""
    if documented_refusal(case, response):
        return None
    return positive_data_acceptance(ctx, response, case)


CONFIG = SchemathesisConfig.from_dict({
    "suppress-health-check": ["all"],
    "seed": 27,  # the same requests every run: a failure here is one to reproduce, never luck
    "auth": {"openapi": {"bearer": {"bearer": TOKEN}}},
    "generation": {"mode": "all", "max-examples": 15, "database": "none"},
    "phases": {"stateful": {"max-steps": 6}},
    "checks": {
        "enabled": True,  # every check Schemathesis has, and the one above
        "positive_data_acceptance": {"enabled": False},  # replaced by documented_acceptance
        # A batch over write_batch_max is refused with the documented 413.
        "negative_data_rejection": {"expected-statuses": [
            "400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]},
    },
})


@pytest.fixture(scope="module")
def conformance_app(tmp_path_factory, jieba_cache):
    """The sample index in a folder of its own (written to by the tests), writes on with :data:`TOKEN`."""
    index_dir = tmp_path_factory.mktemp("conformance-index")
    build_index(index_dir, [SAMPLES], default_category="高新院新闻")
    app = create_app(make_settings(index_dir, jieba_cache, api_tokens=(TOKEN,), commit_delay=0.0,
                                   write_batch_max=BATCH_MAX))
    app.config["TESTING"] = True
    yield app
    close_app(app)


# A generated batch near the body limit is large; Hypothesis warns when it describes one.
@pytest.mark.filterwarnings("ignore:Generating overly large repr")
def test_every_operation_conforms_under_every_check(conformance_app):
    _SERVED["settings"] = conformance_app.config["SETTINGS"]
    with LiveServer(conformance_app) as server:  # over HTTP, as a client outside would
        schema = schemathesis.openapi.from_url(server.url + "/openapi.json", config=CONFIG)
        failures, errors, tested, cases = _run_every_phase(schema)
    assert not errors, "\n\n".join(errors)
    assert not failures, f"{len(failures)} failures:\n\n" + "\n\n".join(dict.fromkeys(t for _, t in failures))
    # Schemathesis does not call the document's own URL (it loaded it: a valid OpenAPI 3.1 document).
    documented = {f"{method.upper()} {path}" for path, item in schema.raw_schema["paths"].items()
                  for method in item} - {"GET /openapi.json"}
    assert documented <= tested and cases > 10 * len(documented), (sorted(documented - tested), cases)


def _run_every_phase(schema) -> tuple[list[tuple[int, str]], list[str], set[str], int]:
    """Run Schemathesis' engine: the failures (status answered, description), errors, operations
    tested and the number of requests made."""
    failures: list[tuple[int, str]] = []
    errors: list[str] = []
    tested: set[str] = set()
    cases = 0
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, engine_events.ScenarioFinished):
            if event.status is not Status.SKIP and event.label:
                tested.add(event.label)
            cases += len(event.recorder.cases)
            for case_id, checks in event.recorder.checks.items():
                for check in checks:
                    if check.status is Status.FAILURE and check.failure_info is not None:
                        info = check.failure_info
                        interaction = event.recorder.interactions.get(case_id)
                        answer = interaction.response if interaction is not None else None
                        said = (f"{answer.status_code} {answer.content[:600]!r}" if answer is not None
                                and answer.content is not None else "")
                        failures.append((answer.status_code if answer is not None else 0,
                                         f"{check.name} on {event.label}: {info.failure.title}\n"
                                         f"{info.failure.message}\n{info.code_sample}\n-> {said}"))
        elif isinstance(event, (engine_events.NonFatalError, engine_events.FatalError)):
            errors.append(str(getattr(event, "info", None) or getattr(event, "exception", event)))
    return failures, errors, tested, cases


# --------------------------------------------------------------------------- the document itself


def _route(path: str) -> str:
    return re.sub(r"\{(\w+)\}", r"<\1>", path)


def test_every_route_is_documented(conformance_app):
    """Each API route of the app, with each of its methods, is in the document (pages, static and
    staff pages aside), and the document has nothing the app does not serve."""
    with conformance_app.app_context():  # the desk's API is documented when the app serves it
        document = openapi_document(conformance_app.config["SETTINGS"])
    documented = {(_route(path), method.upper()) for path, item in document["paths"].items() for method in item}
    served = {(re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", rule.rule), method)
              for rule in conformance_app.url_map.iter_rules()
              if rule.rule.startswith("/api/") or rule.rule in ("/healthz", "/metrics", "/openapi.json")
              for method in rule.methods or () if method not in ("HEAD", "OPTIONS")}
    assert served == documented


def test_limits_come_from_the_settings():
    """Changing a setting changes the document: the limits are generated, not copied."""
    base = default_settings()
    changed = base.replace(max_page_size=7, max_result_window=70, max_limit=9, max_categories=3,
                           max_id_length=12, max_suggest_length=5, write_batch_max=6)
    for settings in (base, changed):
        document = openapi_document(settings)
        search = {p["name"]: p["schema"] for p in document["paths"]["/api/search"]["get"]["parameters"]}
        assert search["page_size"]["anyOf"][0]["maximum"] == settings.max_page_size
        assert search["page"]["anyOf"][0]["maximum"] == settings.max_result_window
        assert search["category"]["maxItems"] == settings.max_categories
        suggest = {p["name"]: p["schema"] for p in document["paths"]["/api/suggest"]["get"]["parameters"]}
        assert suggest["limit"]["maximum"] == settings.max_limit
        assert f"{{0,{settings.max_suggest_length - 2}}}" in suggest["q"]["pattern"]
        put = document["paths"]["/api/documents/{doc_id}"]["put"]
        assert put["parameters"][0]["schema"]["maxLength"] == settings.max_id_length
        batch = document["paths"]["/api/documents"]["post"]["requestBody"]["content"]["application/json"]
        assert batch["schema"]["maxItems"] == settings.write_batch_max
