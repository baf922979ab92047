"""The unfound list's dictionary proposals (issue 27): a user-dictionary line only for text that
looks like a word, and the reason when one is withheld."""

from __future__ import annotations

import base64
import csv
import io

import pytest

from search_service.analytics import dictionary_hint
from search_service.analytics.reports import COMMON_CHARACTER_WEIGHT, SEVERAL_SEARCHES, character_weight
from search_service.web import close_app, create_app

GIBBERISH = "豳鬰爨齉"  # four real but rare characters, one after the other: no word
PASSWORD = "hint-staff-密码"


def test_gibberish_of_rare_characters_gets_no_dictionary_line():
    assert all(character_weight(c) < COMMON_CHARACTER_WEIGHT for c in GIBBERISH)
    hint = dictionary_hint(GIBBERISH)
    assert len(hint["words"]) == 4 and hint["entry"] == ""
    assert all(c in hint["withheld"] for c in GIBBERISH) and "生僻字" in hint["withheld"]


def test_the_same_text_searched_by_several_readers_is_proposed():
    assert dictionary_hint(GIBBERISH, searches=SEVERAL_SEARCHES - 1)["entry"] == ""
    hint = dictionary_hint(GIBBERISH, searches=SEVERAL_SEARCHES)
    assert hint["entry"] == f"{GIBBERISH} 1000 n" and hint["withheld"] == ""


@pytest.mark.parametrize("term", ["数字孪生园区", "氮化镓芯片", "智慧园区管委会"])
def test_new_terms_made_of_common_characters_are_proposed(term):
    """孪 and 镓 are rarer than most characters, yet common enough in real words."""
    hint = dictionary_hint(term)
    assert len(hint["words"]) > 1 and hint["entry"] == f"{term} 1000 n" and hint["withheld"] == ""


@pytest.mark.parametrize("query", ["园区 规划", "园区", "智慧城市"])
def test_what_is_not_one_split_term_needs_neither_a_line_nor_a_reason(query):
    hint = dictionary_hint(query)
    assert hint["entry"] == "" and hint["withheld"] == ""


def test_the_staff_export_proposes_lines_for_words_only(sample_settings, tmp_path):
    app = create_app(sample_settings.replace(analytics_db=str(tmp_path / "hints.sqlite3"), admin_password=PASSWORD))
    try:
        client = app.test_client()
        for query in (GIBBERISH, "数字孪生园区"):
            assert client.get("/search", query_string={"q": query}).status_code == 200
        app.extensions["analytics"].flush()
        auth = {"Authorization": "Basic " + base64.b64encode(f"staff:{PASSWORD}".encode()).decode()}
        response = client.get("/admin/analytics.csv?table=zero", headers=auth)
        assert response.status_code == 200
        rows = {row["query"]: row for row in csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff")))}
        assert rows[GIBBERISH]["user_dict_entry"] == ""
        assert rows["数字孪生园区"]["user_dict_entry"] == "数字孪生园区 1000 n"
    finally:
        close_app(app)
