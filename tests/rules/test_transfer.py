"""``rules export`` / ``rules import``: one JSON document, checked whole, problems as FILE:LINE."""

from __future__ import annotations

import json

import pytest

from search_service.rules import edits, model
from search_service.rules.store import RulesDB
from search_service.rules.transfer import ImportProblems, export_rules, import_rules, parse_document, run_command


@pytest.fixture()
def db(tmp_path) -> RulesDB:
    db = RulesDB(tmp_path / "rules.sqlite3")
    edits.set_curation(db, "园区规划", {"pin": ["a1", "a2"], "hide": ["b1"]}, "甲")
    edits.add_group(db, model.parse_group_text("经开区 = 经济技术开发区"), "甲")
    edits.add_group(db, model.parse_group_text("双碳 => 碳达峰, 碳中和"), "甲")
    edits.set_hot_settings(db, {"length": 8, "days": 14, "min_searches": 2}, "甲")
    edits.pin_hot(db, "新质生产力", "甲")
    edits.block_hot(db, "测试", "甲")
    edits.decide_word(db, "一网统管", "accepted", "甲")
    edits.decide_word(db, "的发展", "rejected", "甲")
    return db


def test_export_then_import_elsewhere_gives_the_same_rules(db, tmp_path):
    path = tmp_path / "rules.json"
    counts = export_rules(path, db)
    assert counts == {"curations": 1, "synonyms": 2, "hot_pins": 1, "hot_blocks": 1, "words": 2}
    doc = json.loads(path.read_text("utf-8"))
    assert doc["format"] == "search_service.rules" and doc["version"] == 1
    assert doc["curations"] == {"园区规划": {"pin": ["a1", "a2"], "hide": ["b1"]}}
    assert doc["hot"] == {"settings": {"length": 8, "days": 14, "min_searches": 2}, "pins": ["新质生产力"],
                          "blocks": ["测试"]}
    assert doc["words"] == {"accepted": ["一网统管"], "rejected": ["的发展"]}
    other = RulesDB(tmp_path / "other.sqlite3")
    _, entry = import_rules(path, other, "导入者")
    assert entry.actor == "导入者" and "rules.json" in entry.summary
    for area in ("curation", "synonym", "hot", "word"):
        assert sorted(json.dumps(i.value, sort_keys=True) for i in other.items(area)) == \
            sorted(json.dumps(i.value, sort_keys=True) for i in db.items(area)), area
    # Importing the same file again changes nothing.
    assert import_rules(path, other)[1] is None


def test_an_import_replaces_everything_and_can_be_undone(db, tmp_path):
    path = tmp_path / "small.json"
    path.write_text(json.dumps({"format": "search_service.rules", "version": 1,
                                "curations": {"低空经济": {"pin": ["z"]}}}), encoding="utf-8")
    _, entry = import_rules(path, db)
    assert [i.key for i in db.items("curation")] == ["低空经济"]
    assert db.items("synonym") == [] and db.items("word") == [] and db.get("hot", "block:测试") is None
    assert db.get("hot", "settings") == model.HOT_DEFAULTS
    db.undo(entry.id, "甲")
    assert [i.key for i in db.items("curation")] == ["园区规划"] and len(db.items("synonym")) == 2
    assert db.get("hot", "block:测试") is True and db.get("hot", "settings")["length"] == 8


BAD = """{
  "format": "search_service.rules",
  "version": 1,
  "curations": {
    "园区规划": {"pin": ["a"], "hide": [" a"]},
    "低空经济": {"pin": [TWENTY_ONE]},
    "高新區": {"pin": ["x"]},
    "高新区": {"pin": ["y"]}
  },
  "synonyms": [
    {"kind": "two_way", "terms": ["经开区", "经济技术开发区"]},
    {"kind": "two_way", "terms": ["独一个"]}
  ],
  "hot": {"settings": {"length": 99}, "pins": [], "blocks": []},
  "words": {"accepted": ["链 长制"], "maybe": []}
}
""".replace("TWENTY_ONE", ", ".join(f'"id{i}"' for i in range(21)))


def test_every_problem_is_reported_with_its_line_and_nothing_is_written(db, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(BAD, encoding="utf-8")
    before = db.version()
    with pytest.raises(ImportProblems) as caught:
        import_rules(path, db)
    problems = caught.value.problems
    assert caught.value.status == 400
    lines = {int(p.split(":")[1]) for p in problems}
    assert all(p.startswith(f"{path}:") for p in problems)
    assert lines == {5, 6, 8, 12, 14, 15}, problems
    text = "\n".join(problems)
    assert "starts or ends with whitespace" in text and "the limit is 20" in text and "MAX_PINNED" in text
    assert "same query as '高新區'" in text and "MAX_HOT_LENGTH" in text and "unknown word list 'maybe'" in text
    assert db.version() == before and db.get("curation", "高新区") is None


@pytest.mark.parametrize(("text", "line", "message"), [
    ('{\n  "format": "search_service.rules",\n  "version": 1,\n  "curations": {,}\n}', 4, "expected a quoted key"),
    ('{\n  "format": "x", "version": 1\n}', 2, '"format" must be'),
    ('{\n  "format": "search_service.rules", "version": 1,\n  "curations": {"a": 1, "a": 2}\n}', 3, "appears twice"),
    ('[1, 2]', 1, "must be a JSON object"),
    ('{"format": "search_service.rules", "version": 1} trailing', 1, "extra text"),
    ('{"format": "search_service.rules", "version": 1,\n"extra": true}', 2, "unknown section"),
])
def test_malformed_documents(text, line, message):
    with pytest.raises(ImportProblems) as caught:
        parse_document(text, "f.json")
    assert caught.value.problems[0].startswith(f"f.json:{line}: "), caught.value.problems
    assert message in caught.value.problems[0]


def test_not_utf8_is_reported_by_line(tmp_path, db):
    path = tmp_path / "gbk.json"
    path.write_bytes('{\n"curations": {"园区": {"pin": ["a"]}}}'.encode("gbk"))
    with pytest.raises(ImportProblems, match=r"gbk.json:2: not UTF-8"):
        import_rules(path, db)


def test_the_command_s_exit_statuses(db, tmp_path, capsys):
    index_dir = db.path.parent
    assert run_command("export", tmp_path / "out.json", index_dir) == 0
    assert "1 curation(s), 2 synonym group(s)" in capsys.readouterr().err
    assert run_command("import", tmp_path / "out.json", index_dir) == 0
    assert "nothing changed" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text(BAD, encoding="utf-8")
    assert run_command("import", tmp_path / "bad.json", index_dir) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'bad.json'}:5:" in err and "nothing was imported" in err
    assert run_command("import", tmp_path / "missing.json", index_dir) == 1
    assert "cannot read the file" in capsys.readouterr().err
