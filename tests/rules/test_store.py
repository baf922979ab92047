"""The rules file: changes with their history, undo (and its conflicts), the version, bounds, jobs."""

from __future__ import annotations

import sqlite3

import pytest

from search_service.errors import InvalidParameter, NotFound
from search_service.rules import edits, model
from search_service.rules.store import JobRunning, RulesDB, UndoConflict


@pytest.fixture()
def db(tmp_path) -> RulesDB:
    return RulesDB(tmp_path / "rules.sqlite3").create()


def test_a_change_is_written_with_its_history_and_a_new_version(db):
    assert db.version() == 0
    key, rule, entry = edits.set_curation(db, "高新區", {"pin": ["a", "b"]}, "王编辑（管理密码）")
    assert key == "高新区" and rule == {"pin": ["a", "b"], "hide": []}
    assert db.get("curation", "高新区") == rule
    assert db.version() == 1
    assert entry is not None and entry.actor == "王编辑（管理密码）" and "高新区" in entry.summary
    assert [c.to_json() for c in entry.changes] == [
        {"area": "curation", "key": "高新区", "before": None, "after": rule}]
    # The same value again changes nothing: no history entry, no new version.
    assert edits.set_curation(db, "高新区", {"pin": ["a", "b"]}, "someone")[2] is None
    assert db.version() == 1 and db.history_count() == 1


def test_any_change_can_be_undone_and_the_undo_too(db):
    edits.set_curation(db, "园区", {"pin": ["a"]}, "甲")
    _, _, second = edits.set_curation(db, "园区", {"pin": ["b"], "hide": ["c"]}, "乙")
    undo = db.undo(second.id, "丙")
    assert db.get("curation", "园区") == {"pin": ["a"], "hide": []}
    assert undo.undo_of == second.id and undo.actor == "丙" and f"#{second.id}" in undo.summary
    assert db.entry(second.id).undone_by == undo.id
    with pytest.raises(UndoConflict, match="already undone"):
        db.undo(second.id, "丙")
    db.undo(undo.id, "丁")  # undoing the undo redoes the change
    assert db.get("curation", "园区") == {"pin": ["b"], "hide": ["c"]}
    with pytest.raises(NotFound):
        db.undo(999, "丙")


def test_undo_refuses_to_overwrite_a_later_change_and_names_it(db):
    _, _, first = edits.set_curation(db, "园区", {"pin": ["a"]}, "甲")
    _, _, later = edits.set_curation(db, "园区", {"pin": ["z"]}, "乙")
    edits.set_curation(db, "别的词", {"pin": ["q"]}, "乙")  # another rule: no conflict with it
    with pytest.raises(UndoConflict) as caught:
        db.undo(first.id, "丙")
    assert caught.value.status == 409 and f"change {later.id}" in caught.value.message
    assert db.get("curation", "园区") == {"pin": ["z"], "hide": []}  # nothing written
    db.undo(later.id, "丙")
    db.undo(first.id, "丙")
    assert db.get("curation", "园区") is None


def test_deleting_and_restoring_a_rule(db):
    edits.set_curation(db, "园区", {"hide": ["x"]}, "甲")
    removal = edits.delete_curation(db, "園區", "甲")  # the same rule, written in Traditional
    assert db.get("curation", "园区") is None
    db.undo(removal.id, "甲")
    assert db.get("curation", "园区") == {"pin": [], "hide": ["x"]}


def test_the_number_of_rules_is_bounded_in_the_transaction(db, monkeypatch):
    monkeypatch.setattr(model, "MAX_CURATIONS", 2)
    edits.set_curation(db, "一", {"pin": ["a"]}, "甲")
    edits.set_curation(db, "二", {"pin": ["a"]}, "甲")
    with pytest.raises(InvalidParameter, match="the limit is 2") as caught:
        edits.set_curation(db, "三", {"pin": ["a"]}, "甲")
    assert "MAX_CURATIONS" in caught.value.message
    assert db.get("curation", "三") is None and db.history_count() == 2  # rolled back whole
    edits.set_curation(db, "一", {"pin": ["b"]}, "甲")  # changing an existing one is fine


def test_editor_steps_keep_one_list_per_id(db):
    edits.edit_curation(db, "园区", "甲", pin="a")
    edits.edit_curation(db, "园区", "甲", pin="b")
    edits.edit_curation(db, "园区", "甲", hide="c")
    edits.edit_curation(db, "园区", "甲", down="a")
    assert db.get("curation", "园区") == {"pin": ["b", "a"], "hide": ["c"]}
    edits.edit_curation(db, "园区", "甲", hide="a")  # hiding a pinned article unpins it
    assert db.get("curation", "园区") == {"pin": ["b"], "hide": ["c", "a"]}
    assert edits.edit_curation(db, "园区", "甲", up="b") is None  # already first: nothing to do
    edits.edit_curation(db, "园区", "甲", unpin="b")
    edits.edit_curation(db, "园区", "甲", unhide="c")
    edits.edit_curation(db, "园区", "甲", unhide="a")
    assert db.get("curation", "园区") is None  # nothing left: the rule goes


def test_synonym_groups_keep_their_keys_when_the_list_is_replaced(db):
    key, _ = edits.add_group(db, model.parse_group_text("经开区 = 经济技术开发区"), "甲")
    edits.replace_synonyms(db, {"groups": [{"kind": "two_way", "terms": ["经济技术开发区", "经开区"]},
                                           {"kind": "one_way", "from": "双碳", "to": ["碳达峰"]}]}, "乙")
    items = db.items("synonym")
    assert [i.key for i in items][0] == key and len(items) == 2
    with pytest.raises(InvalidParameter, match="exists already"):
        edits.add_group(db, model.parse_group_text("经开区 = 经济技术开发区"), "甲")
    entry = edits.replace_synonyms(db, {"groups": []}, "乙")
    assert db.items("synonym") == [] and len(entry.changes) == 2


def test_hot_pins_and_blocks_exclude_each_other(db):
    edits.pin_hot(db, "园区规划", "甲")
    edits.block_hot(db, "园区规划", "甲")
    assert db.get("hot", "pins") is None and db.get("hot", "block:园区规划") is True
    edits.pin_hot(db, "園區規劃", "甲")
    assert db.get("hot", "pins") == ["园区规划"] and db.get("hot", "block:园区规划") is None


def test_one_job_at_a_time_and_a_dead_one_is_noticed(db):
    job = db.start_job("reindex", "甲")
    with pytest.raises(JobRunning) as caught:
        db.start_job("mine", "乙")
    assert caught.value.status == 409
    with sqlite3.connect(db.path) as conn:  # its process died long ago: no news for hours
        conn.execute("UPDATE jobs SET updated = updated - 7200 WHERE id = ?", (job.id,))
    other = db.start_job("mine", "乙")
    assert db.job(job.id).state == "failed" and other.running
    db.update_job(other.id, done=5, total=10)
    assert db.job(other.id).percent == 50
    db.update_job(other.id, state="done", message="ok")
    assert db.latest_job("mine").state == "done" and db.latest_job("mine").finished is not None


def test_the_file_is_made_on_the_first_change(tmp_path):
    db = RulesDB(tmp_path / "sub" / "rules.sqlite3")
    assert db.items("curation") == [] and db.version() == 0 and db.history() == []
    edits.set_curation(db, "园区", {"pin": ["a"]}, "甲")
    assert db.exists() and db.version() == 1
