"""The rules in effect in a process: a change of any process is seen on the next call, cheaply."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import pytest

from search_service.rules import edits, model
from search_service.rules.source import RulesSource
from search_service.rules.store import RulesDB
from search_service.text.analysis import SEGMENTER, query_words

from ..helpers import REPO


@pytest.fixture()
def db(tmp_path) -> RulesDB:
    return RulesDB(tmp_path / "rules.sqlite3")


def test_without_a_file_there_are_no_rules_and_the_file_is_noticed_once_made(db):
    source = RulesSource(db.path)
    assert source.current().version == 0 and source.current().curation("园区") is None
    edits.set_curation(db, "园区", {"pin": ["a"]}, "甲")
    state = source.current()
    assert state.curation("園區").pin == ("a",) and state.curation(" 园区 ").hide == ()


@pytest.mark.processes
def test_a_change_written_by_another_process_is_in_effect_on_the_next_call(db):
    source = RulesSource(db.path)
    edits.set_curation(db, "园区", {"pin": ["a"]}, "甲")
    assert source.current().curation("园区").pin == ("a",)
    script = ("import sys; from search_service.rules import edits; from search_service.rules.store import RulesDB; "
              "edits.set_curation(RulesDB(sys.argv[1]), '园区', {'pin': ['b', 'a']}, 'other process')")
    subprocess.run([sys.executable, "-c", script, str(db.path)], check=True, cwd=REPO, timeout=60)
    assert source.current().curation("园区").pin == ("b", "a")


def test_every_thread_sees_a_change(db):
    import threading

    source = RulesSource(db.path)
    edits.set_curation(db, "园区", {"pin": ["a"]}, "甲")
    seen = []
    thread = threading.Thread(target=lambda: seen.append(source.current().curation("园区").pin))
    thread.start()
    thread.join()
    edits.set_curation(db, "园区", {"pin": ["c"]}, "甲")
    thread = threading.Thread(target=lambda: seen.append(source.current().curation("园区").pin))
    thread.start()
    thread.join()
    assert seen == [("a",), ("c",)] and source.current().curation("园区").pin == ("c",)


def test_the_check_per_request_is_cheap(db):
    source = RulesSource(db.path)
    db.change("甲", "many", [("curation", f"词{i}", {"pin": ["a"], "hide": []}) for i in range(model.MAX_CURATIONS)])
    source.current()
    times = []
    for _ in range(2000):
        started = time.perf_counter()
        source.current().curation("没有规则的搜索词")
        times.append(time.perf_counter() - started)
    assert statistics.median(times) * 1000 < 0.1


def test_an_unreadable_file_keeps_the_rules_loaded_before(db, caplog):
    source = RulesSource(db.path)
    edits.set_curation(db, "园区", {"pin": ["a"]}, "甲")
    assert source.current().curation("园区") is not None
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(f"{db.path}{suffix}"):
            os.remove(f"{db.path}{suffix}")
    db.path.write_bytes(b"this is not a database at all" * 100)
    assert source.current().curation("园区").pin == ("a",)
    assert "the rules loaded before stay in effect" in caplog.text


def test_dictionary_words_in_effect_are_taught_to_the_segmenter(db, jieba_cache):
    word = "揭榜挂帅机制"
    assert query_words(word) != [word]
    cleared = []
    source = RulesSource(db.path, on_dictionary_change=lambda: cleared.append(True))
    db.set_dictionary([word])
    source.current()
    try:
        assert query_words(word) == [word] and cleared == [True]
        db.set_dictionary([])
        source.current()
        if hasattr(SEGMENTER, "remove_word"):  # text/segmenter.py's part of the integration
            assert query_words(word) != [word]
    finally:
        from search_service.rules.words import _taught

        if word in _taught:  # leave the process's segmenter as it was for the other tests
            SEGMENTER._jieba.del_word(word)
            SEGMENTER._dictionary_changed()
        _taught.discard(word)
