"""Property-based tests: whatever a client sends to /api/search, /api/suggest or the results page
(random Unicode, control characters, huge values, operator soup, repeated and unknown
parameters, malformed percent-encoding), the answer is never a 5xx: results, or one error in the
error shape.

Derandomized, so a run is reproducible and CI never flakes on a new random draw; widen
``max_examples`` locally to search further.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# Pieces of the query language and of things people paste, to build "operator soup".
SOUP = ["OR", "AND", "NOT", "|", "||", "&&", "-", "--", "(", ")", "（", "）", '"', "“", "”", "「", "」", "『", "』",
        "＂", "title:", "TITLE:", ":", "*", "**", "智慧*", "*智慧", "高新区", "园区", "規劃", "iPhone15", "5g",
        "a*b", "-园区", "NOT NOT", "()", '""', "\\", "%", "%00", "\x00", "\t", "\n", "\u3000", "\u200b", "\ufeff",
        "\U0001f600", "ｔｉｔｌｅ:", "ＯＲ", "𠀀", "?", "&", "=", "#", "<script>", "' OR 1=1 --"]

any_text = st.text(max_size=40)  # every Unicode code point Hypothesis draws, control characters included
soup = st.lists(st.sampled_from(SOUP) | st.text(max_size=4), max_size=25).map(
    lambda parts: "".join(parts) if len(parts) % 2 else " ".join(parts))
huge = st.builds(lambda ch, n: ch * n, st.sampled_from(["园", "a", " ", "(", '"', "*", "OR ", "\u0301"]),
                 st.integers(min_value=200, max_value=20_000))
query_text = st.one_of(any_text, soup, huge, st.sampled_from(SOUP))
numberish = st.one_of(st.integers(min_value=-10**12, max_value=10**12).map(str), any_text,
                      st.sampled_from(["", "0", "1", "01", "1e3", "1.0", "٣", "１", "99999999999999999999"]))
dateish = st.one_of(st.dates().map(lambda d: d.isoformat()), any_text,
                    st.sampled_from(["", "2024-02-30", "0000-00-00", "2025-13-01", "２０２５-０１-０１", "2025/01/01"]))
sortish = st.one_of(st.sampled_from(["relevance", "date_desc", "date_asc", "", "DATE_DESC"]), any_text)


def search_params():
    """A list of (name, value) pairs as a client might send them: any subset, repeats, unknowns."""
    pair = st.one_of(
        st.tuples(st.just("q"), query_text),
        st.tuples(st.just("category"), st.one_of(any_text, st.sampled_from(["高新院新闻", "政策解读", ""]))),
        st.tuples(st.sampled_from(["date_from", "date_to"]), dateish),
        st.tuples(st.just("sort"), sortish),
        st.tuples(st.sampled_from(["page", "page_size"]), numberish),
        st.tuples(any_text, any_text),  # unknown (or misspelt) parameters
    )
    return st.lists(pair, max_size=6)


def suggest_params():
    pair = st.one_of(
        st.tuples(st.just("q"), query_text),
        st.tuples(st.just("limit"), numberish),
        st.tuples(st.just("sid"), st.one_of(any_text, st.sampled_from(["abc-123_x", ""]))),
        st.tuples(any_text, any_text),
    )
    return st.lists(pair, max_size=5)


def encode(params: list[tuple[str, str]]) -> str:
    # Lone surrogates cannot be UTF-8 encoded by any client; send them as replacement characters.
    def part(text: str) -> str:
        return quote(text.encode("utf-8", "replace"), safe="")

    return "&".join(f"{part(name)}={part(value)}" for name, value in params)


def check(response, kind: str) -> None:
    """Never a 5xx; JSON results of the right shape, or the one error shape."""
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if kind == "page":
        assert response.mimetype == "text/html"
        assert response.status_code in (200, 400, 404)
        return
    assert response.is_json
    body = response.get_json()
    if response.status_code == 200:
        if kind == "search":
            assert isinstance(body["hits"], list) and isinstance(body["total"], int) and body["total"] >= 0
            assert len(body["hits"]) <= body["page_size"]
        else:
            assert isinstance(body["suggestions"], list)
    else:
        assert set(body) == {"error"}
        error = body["error"]
        assert error["status"] == response.status_code == 400
        assert isinstance(error["code"], str) and isinstance(error["message"], str) and error["message"]


@pytest.fixture(scope="module")
def fuzz_client(app):
    return app.test_client()


@FUZZ
@given(params=search_params())
def test_search_api_never_fails(fuzz_client, params):
    check(fuzz_client.get("/api/search?" + encode(params)), "search")


@FUZZ
@given(params=suggest_params())
def test_suggest_api_never_fails(fuzz_client, params):
    check(fuzz_client.get("/api/suggest?" + encode(params)), "suggest")


@settings(FUZZ, max_examples=100)
@given(params=search_params())
def test_results_page_never_fails(fuzz_client, params):
    check(fuzz_client.get("/search?" + encode(params)), "page")


@settings(FUZZ, max_examples=100)
@given(raw=st.binary(max_size=300))
def test_raw_query_strings_never_fail(fuzz_client, raw):
    """Bytes as they arrive: invalid UTF-8, stray %, lone & and =."""
    query = raw.decode("latin-1")
    query = "".join(ch if 0x21 <= ord(ch) < 0x7f and ch != "#" else quote(ch.encode("latin-1")) for ch in query)
    for path, kind in (("/api/search", "search"), ("/api/suggest", "suggest")):
        check(fuzz_client.get(f"{path}?{query}"), kind)


@settings(FUZZ, max_examples=100)
@given(q=query_text)
def test_any_query_text_searches_or_is_refused_cleanly(fuzz_client, q):
    response = fuzz_client.get("/api/search?q=" + quote(q.encode("utf-8", "replace"), safe=""))
    check(response, "search")
    if response.status_code == 400:
        # Only the documented bounds refuse a query text; each names its setting.
        message = response.get_json()["error"]["message"]
        assert any(word in message for word in ("max_query_length", "max_query_terms", "leading wildcards",
                                                "max_prefix_terms", "levels deep; the limit is")), message
