"""Desk synonym groups: one-way and two-way, merged with the file's, in effect on the next request."""

from __future__ import annotations

from search_service.engine.compiler import compile_query
from search_service.rules import edits, model
from search_service.rules.source import RulesSource
from search_service.rules.store import RulesDB
from search_service.rules.synonyms import (
    DeskSynonymSource,
    DeskSynonymTable,
    expansion_query,
    merged_table,
    preview_queries,
)
from search_service.text.synonyms import SynonymTable, parse_synonyms

FILE = parse_synonyms("高新区 = 高新技术产业开发区\n")


class FileSource:
    def __init__(self, table: SynonymTable) -> None:
        self.table_now = table
        self.path = "synonyms.txt"

    def table(self) -> SynonymTable:
        return self.table_now


def expansions(text: str, table: SynonymTable) -> dict:
    return {e["term"]: e["synonyms"] for e in compile_query(text, synonyms=table).expansions()}


def test_one_way_groups_expand_in_one_direction_only():
    table = merged_table(FILE, [model.parse_group_text("双碳 => 碳达峰, 碳中和"),
                                model.parse_group_text("经开区 = 經濟技術開發區")])
    assert isinstance(table, DeskSynonymTable)
    assert table.alternatives("双碳") == ("碳达峰", "碳中和")
    assert table.alternatives("碳达峰") == ()
    assert table.alternatives("经济技术开发区") == ("经开区",)  # Traditional folded like the index
    assert table.alternatives("高新区") == ("高新技术产业开发区",)  # the file's groups still apply
    assert expansions("双碳 园区", table) == {"双碳": ["碳达峰", "碳中和"]}
    assert expansions("碳中和", table) == {}


def test_without_desk_groups_the_file_table_itself_is_used():
    assert merged_table(FILE, []) is FILE


def test_the_merged_groups_change_whenever_a_one_way_group_does():
    # The result cache and the API's ETag fingerprint a table by its groups.
    one = merged_table(FILE, [model.parse_group_text("双碳 => 碳达峰")])
    two = merged_table(FILE, [model.parse_group_text("双碳 => 碳中和")])
    assert hash(one.groups) != hash(two.groups)


def test_the_source_merges_the_file_and_the_desk_on_every_call(tmp_path):
    db = RulesDB(tmp_path / "rules.sqlite3")
    file_source = FileSource(FILE)
    source = DeskSynonymSource(file_source, RulesSource(db.path))
    assert source.table() is FILE and source.path == "synonyms.txt"
    edits.add_group(db, model.parse_group_text("经开区 = 经济技术开发区"), "甲")
    table = source.table()
    assert table.alternatives("经开区") == ("经济技术开发区",) and source.table() is table  # cached per version
    file_source.table_now = parse_synonyms("园区 = 产业园\n")  # the operator's file changed
    assert source.table().alternatives("园区") == ("产业园",) and source.table().alternatives("经开区")
    assert source.file_table() is file_source.table_now


def test_the_preview_spells_each_member_s_expansion_out():
    before = FILE
    group = model.parse_group_text("经开区 = 经济技术开发区 = 开发区 管委会")
    after = merged_table(FILE, [group])
    rows = preview_queries(["经开区", "开发区 管委会"], before, after)
    assert rows[0] == ("经开区", "经开区", "(经开区) OR (经济技术开发区) OR (开发区 管委会)")
    assert rows[1][2] == "(开发区 管委会) OR (经开区) OR (经济技术开发区)"
    assert expansion_query("高新区", before) == "(高新区) OR (高新技术产业开发区)"


def test_the_wrapped_file_source_s_attributes_pass_through(tmp_path):
    file_source = FileSource(FILE)
    source = DeskSynonymSource(file_source, RulesSource(tmp_path / "rules.sqlite3"))
    source.check_interval = 0.0  # e.g. a test skipping the file's check interval
    assert file_source.check_interval == 0.0 and source.check_interval == 0.0
