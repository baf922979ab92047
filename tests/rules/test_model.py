"""The one validation of staff rules: every refusal is a 400 naming the field and, for a bound, the limit."""

from __future__ import annotations

import pytest

from search_service.errors import InvalidParameter
from search_service.rules import model


def refused(work) -> InvalidParameter:
    with pytest.raises(InvalidParameter) as caught:
        work()
    assert caught.value.status == 400
    return caught.value


def test_a_rule_is_kept_under_the_query_as_analytics_groups_it():
    assert model.rule_query("  高新區   產業 ") == "高新区 产业"
    assert model.rule_query("ＡＢＣ 园区") == "abc 园区"
    assert model.rule_query("园区 OR 规划") == "园区 OR 规划"  # operators keep their capitals
    assert refused(lambda: model.rule_query("   ")).param == "query"
    assert "MAX_RULE_QUERY_CHARS" in refused(lambda: model.rule_query("园" * 257)).message
    assert "control character" in refused(lambda: model.rule_query("园\x07区")).message


def test_a_curation_names_its_bounds():
    assert model.curation({"pin": ["a", "b"], "hide": ["c"]}) == {"pin": ["a", "b"], "hide": ["c"]}
    too_many = refused(lambda: model.curation({"pin": [f"id{i}" for i in range(model.MAX_PINNED + 1)]}))
    assert too_many.param == "pin"
    assert f"the limit is {model.MAX_PINNED}" in too_many.message and "MAX_PINNED" in too_many.message
    hidden = refused(lambda: model.curation({"hide": [f"id{i}" for i in range(model.MAX_HIDDEN + 1)]}))
    assert hidden.param == "hide" and "MAX_HIDDEN" in hidden.message
    # An id in both lists is pinned: the stronger intent, and a rule JSON Schema cannot state.
    assert model.curation({"pin": ["a"], "hide": ["a", "b"]}) == {"pin": ["a"], "hide": ["b"]}
    assert refused(lambda: model.curation({"pin": None, "hide": ["b"]})).param == "pin"
    assert "twice" in refused(lambda: model.curation({"pin": ["a", "a"]})).message
    assert refused(lambda: model.curation({"pin": [], "hide": []})).param == "pin"
    assert refused(lambda: model.curation({"pin": ["x"], "boost": 2})).param == "boost"
    assert refused(lambda: model.curation({"pin": [" a"]})).param == "pin"  # ids are stored exactly as sent
    assert refused(lambda: model.curation({"pin": [3]})).param == "pin"
    assert refused(lambda: model.curation(["a"])).param == "body"
    assert "limit is 8" in refused(lambda: model.curation({"pin": ["x" * 9]}, max_id_chars=8)).message


def test_synonym_groups_two_way_and_one_way():
    assert model.parse_group_text("经开区 = 经济技术开发区 = 經開區") == {
        "kind": "two_way", "terms": ["经开区", "经济技术开发区"]}  # 經開區 is 经开区 once folded
    assert model.parse_group_text("双碳 => 碳达峰, 碳中和") == {"kind": "one_way", "from": "双碳",
                                                                 "to": ["碳达峰", "碳中和"]}
    assert model.parse_group_text("碳达峰 碳中和 = 双碳")["terms"] == ["碳达峰 碳中和", "双碳"]
    assert "at least two" in refused(lambda: model.parse_group_text("园区 = 園區")).message
    assert "other than" in refused(lambda: model.parse_group_text("园区 => 園區")).message
    many = " = ".join(f"词{i}" for i in range(model.MAX_GROUP_TERMS + 1))
    assert "MAX_GROUP_TERMS" in refused(lambda: model.parse_group_text(many)).message
    assert "MAX_TERM_CHARS" in refused(lambda: model.parse_group_text("园" * 65 + " = 区")).message
    assert refused(lambda: model.synonym_group({"kind": "both", "terms": ["a", "b"]})).param == "group.kind"


def test_the_whole_list_keeps_a_repeated_group_once_and_checks_every_field():
    groups = [{"kind": "two_way", "terms": ["甲", "乙"]}, {"kind": "two_way", "terms": ["乙", "甲 "]}]
    assert model.synonym_groups({"groups": groups}) == [{"kind": "two_way", "terms": ["甲", "乙"]}]
    # Groups that find nothing new once folded are left out of the list (the desk's form refuses them).
    idle = [{"terms": ["园区", "園區"]}, {"kind": "one_way", "from": "ab", "to": ["AB"]}]
    assert model.synonym_groups({"groups": idle}) == []
    assert refused(lambda: model.synonym_groups({"groups": "甲=乙"})).param == "groups"
    assert refused(lambda: model.synonym_groups({"groups": [], "file_groups": [[{}]]})).param == "file_groups"
    assert model.synonym_groups({"groups": [], "file_groups": [["甲", "乙"]]}) == []  # as GET gives it: ignored
    assert refused(lambda: model.synonym_group({"terms": ["甲", "乙"], "id": 3})).param == "group.id"
    assert "twice" in refused(lambda: model.synonym_group({"terms": ["甲", "甲"]})).message
    assert model.synonym_group({"terms": [" 甲 ", "甲", "乙"]}) == {"kind": "two_way", "terms": ["甲", "乙"]}
    assert refused(lambda: model.synonym_group({"terms": ["甲\t乙", "丙"]})).param == "group.terms[1]"
    assert model.synonym_group({"terms": ["\t甲 \u3000乙 ", "丙"]})["terms"] == ["甲 乙", "丙"]


def test_hot_settings_and_entries():
    assert model.hot_settings({"length": "12"}) == {"length": 12, "days": 7, "min_searches": 3}
    assert "MAX_HOT_LENGTH" in refused(lambda: model.hot_settings({"length": model.MAX_HOT_LENGTH + 1})).message
    assert refused(lambda: model.hot_settings({"days": 0})).param == "days"
    assert refused(lambda: model.hot_settings({"colour": 1})).param == "colour"
    assert model.hot_entry(" 新質生產力 ") == "新质生产力"
    assert "MAX_HOT_ENTRY_CHARS" in refused(lambda: model.hot_entry("园" * 65)).message
    assert "MAX_HOT_PINS" in refused(lambda: model.hot_pins([f"词{i}" for i in range(21)])).message


def test_dictionary_words():
    assert model.word(" 链长制 ") == "链长制"
    assert refused(lambda: model.word("链 长制")).param == "word"
    assert refused(lambda: model.word("abc")).param == "word"  # no Chinese character
    assert "MAX_WORD_CHARS" in refused(lambda: model.word("链" * 17)).message
    assert refused(lambda: model.word_status("maybe")).param == "status"
