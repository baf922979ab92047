"""The result types' JSON: every field, in plain data; query strings as urlencode writes them."""

from __future__ import annotations

import dataclasses
import datetime as dt
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from search_service.engine.request import SearchRequest, query_string
from search_service.engine.results import FacetValue, Hit, Suggestion


def test_hit_json_carries_every_field():
    hit = Hit(id="a", title="标题", title_html="<mark>标题</mark>", snippet="…", category="新闻", date="2024-01-02",
              url="https://example.org/a", source="s", score=1.5, rank=1, match="all_words")
    assert hit.to_json() == dataclasses.asdict(hit)


def test_facet_value_json_carries_every_field():
    value = FacetValue(value="新闻", count=3, selected=True)
    assert value.to_json() == dataclasses.asdict(value)


@pytest.mark.parametrize("excerpt", [None, "正文<mark>高新</mark>"])
def test_suggestion_json_carries_every_field_and_the_followable_url(excerpt):
    suggestion = Suggestion(id="a", title="高新区", title_html="<mark>高新</mark>区", category="新闻", date=None,
                            url="javascript:alert(1)", excerpt_html=excerpt)
    expected = dataclasses.asdict(suggestion) | {"source_url": None}
    if excerpt is None:
        del expected["excerpt_html"]
    assert suggestion.to_json() == expected


@given(st.lists(st.tuples(st.text(max_size=12), st.text(max_size=30)), max_size=6))
def test_query_string_is_urlencode(params):
    assert query_string(params) == urlencode(params)


def test_request_query_string_applies_changes_like_to_params():
    req = SearchRequest(q="智慧 城市&x=1", categories=("新闻", "政策 解读"), date_from=dt.date(2024, 1, 1), page=3)
    changes = {"categories": ("新闻",), "page": None}
    assert req.query_string(**changes) == urlencode(req.to_params(**changes))
    assert SearchRequest().query_string() == ""
