"""Query syntax and request validation."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

import pytest

from search_service.engine.request import Limits, SearchRequest, get_list_from_mapping, query_param
from search_service.engine.syntax import And, Not, Or, Term, parse, parsed, positive_terms
from search_service.errors import InvalidParameter


def request(**params) -> SearchRequest:
    return SearchRequest.from_params(get_list_from_mapping(params), Limits(max_query_length=20))


class TestParse:
    def test_words_are_anded(self):
        assert parse("高新区 智慧城市") == And((Term("高新区"), Term("智慧城市")))

    def test_phrases_in_ascii_and_chinese_quotes(self):
        assert parse('"世界级集群"') == Term("世界级集群", phrase=True)
        assert parse("“世界级集群”") == Term("世界级集群", phrase=True)

    def test_or_not_minus_and_groups(self):
        assert parse("a OR b") == Or((Term("a"), Term("b")))
        assert parse("a -b") == And((Term("a"), Not(Term("b"))))
        assert parse("a NOT b") == And((Term("a"), Not(Term("b"))))
        assert parse("(a OR b) c") == And((Or((Term("a"), Term("b"))), Term("c")))

    def test_title_field(self):
        assert parse("title:智慧城市") == Term("智慧城市", field="title")
        assert parse('title:"智慧 城市"') == Term("智慧 城市", phrase=True, field="title")

    @pytest.mark.parametrize("text, words", [
        ('"unbalanced quote', ["unbalanced", "quote"]),
        ("(a b", ["a", "b"]),
        ("a b)", ["a", "b"]),
        ("OR", []),
        ("a OR", ["a"]),
        ("NOT", []),
        ("AND a", ["a"]),
    ])
    def test_malformed_queries_become_plain_words(self, text, words):
        assert [t.text for t in positive_terms(parse(text))] == words

    def test_empty(self):
        assert parse("   ") is None


class TestRequest:
    def test_defaults(self):
        assert request() == SearchRequest()

    def test_all_parameters(self):
        req = request(q="高新区", category=["政策解讀", "产业规划"], date_from="2024-01-01", date_to="2024-12-31",
                      sort="date_asc", page="2", page_size="20")
        assert req.categories == ("政策解读", "产业规划")  # canonical names
        assert req.date_from == dt.date(2024, 1, 1) and req.page == 2 and req.page_size == 20
        assert dict(req.to_params())["sort"] == "date_asc"
        assert SearchRequest.from_params(get_list_from_mapping(_multi(req.to_params()))) == req

    def test_query_strings_are_the_urlencoded_parameters(self):
        # query_string() reuses each unchanged parameter's quoted part; the bytes must stay those of
        # urlencode(to_params(...)), for every request and every change a page or facet link makes.
        requests = [SearchRequest(), SearchRequest(q="a b&c=d/é"),
                    SearchRequest(q="智慧城市 +园区", categories=("政策解读", "A&B"), date_from=dt.date(2024, 1, 1),
                                  date_to=dt.date(2024, 12, 31), sort="date_asc", page=3, page_size=20, correct=False)]
        changes = [{}, {"page": None}, {"page": 2}, {"categories": ("新闻",), "page": None}, {"categories": None},
                   {"categories": ()}, {"date_from": dt.date(2025, 2, 1), "date_to": "2025-02-28"},
                   {"date_from": None, "date_to": None, "page": None}, {"sort": "date_desc"}, {"sort": ""},
                   {"q": "新 查询"}, {"q": None}, {"page_size": "50"}, {"correct": "0"}, {"correct": None}]
        for req in requests:
            for change in changes:
                assert req.query_string(**change) == urlencode(req.to_params(**change)), (req, change)
            # Many at once (a facet's links), each set of changed names seen more than once.
            assert req.query_strings(changes + changes[::-1]) == [
                urlencode(req.to_params(**change)) for change in changes + changes[::-1]]
            with pytest.raises(TypeError):
                req.query_string(colour="red")
            with pytest.raises(TypeError):
                req.query_strings([{"page": None}, {"colour": "red"}])

    @pytest.mark.parametrize("params, param", [
        ({"page": "0"}, "page"), ({"page": "x"}, "page"), ({"page_size": "101"}, "page_size"),
        ({"page_size": "-1"}, "page_size"), ({"date_from": "2024-13-01"}, "date_from"),
        ({"date_to": "yesterday"}, "date_to"), ({"sort": "random"}, "sort"), ({"q": "字" * 21}, "q"),
        ({"date_from": "2024-02-01", "date_to": "2024-01-01"}, "date_from"),
        ({"page": "1001", "page_size": "10"}, "page"), ({"q": ["a", "b"]}, "q"),
    ])
    def test_bad_parameters_name_themselves(self, params, param):
        with pytest.raises(InvalidParameter) as caught:
            request(**params)
        assert caught.value.param == param
        assert param in caught.value.message

    def test_result_window_limit_is_named(self):
        with pytest.raises(InvalidParameter, match="10000"):
            request(page="101", page_size="100")

    def test_the_request_reuses_the_parse_of_its_validation(self):
        parsed.cache_clear()
        req = request(q="(园区 OR 高新) -规划")
        assert req.syntax.node == And((Or((Term("园区"), Term("高新"))), Not(Term("规划"))))
        assert req.syntax is parsed(req.q)  # validated, searched and highlighted from one parse
        assert parsed.cache_info().misses == 1

    @pytest.mark.parametrize("params, suggest, required, setting", [
        ({"q": "字" * 81}, False, False, "max_query_length"),
        ({"q": "字" * 9}, True, False, "max_suggest_length"),
        ({"q": " ".join("abc")}, False, False, "max_query_terms"),
        ({"q": "*abc"}, False, False, "leading wildcards"),
        ({"q": "(" * 70 + "a"}, False, False, "the limit is 64"),
        ({"q": ["a", "b"]}, False, False, "given 2 times"),
        ({"q": " "}, False, True, "q is required"),
    ])
    def test_one_check_of_q_names_each_limit(self, params, suggest, required, setting):
        limits = Limits(max_query_length=80, max_suggest_length=8, max_query_terms=2)
        with pytest.raises(InvalidParameter, match=setting) as caught:
            query_param(get_list_from_mapping(params), limits, suggest=suggest, required=required)
        assert caught.value.param == "q"
        assert query_param(get_list_from_mapping({"q": " 园区 "}), limits, suggest=suggest).text == "园区"


def _multi(pairs):
    out: dict[str, list[str]] = {}
    for key, value in pairs:
        out.setdefault(key, []).append(value)
    return out
