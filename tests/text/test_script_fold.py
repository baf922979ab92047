"""The character table converts Traditional to Simplified exactly as OpenCC does."""

from __future__ import annotations

import json
from pathlib import Path

import opencc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from search_service.text import analysis, script_fold

from ..helpers import corpus_records

CONFIG_DIR = Path(opencc.__file__).parent / "clib" / "share" / "opencc"


def convert(text: str) -> str:
    return analysis._t2s().convert(text)


def opencc_keep_length(text: str) -> str:
    """What normalize's script step gave before the table: OpenCC, one character at a time
    where it changed a length."""
    converted = convert(text)
    if len(converted) == len(text):
        return converted
    return "".join(one if len(one := convert(ch)) == 1 else ch for ch in text)


@pytest.fixture(scope="module")
def folder() -> script_fold.ScriptFolder:
    built = script_fold.folder(convert)
    # None would mean every text goes to OpenCC: correct, but the speed is gone.
    assert built is not None, "OpenCC's t2s dictionaries could not be read (see the log)"
    return built


@pytest.fixture(scope="module")
def phrases() -> list[str]:
    normalization, conversion = script_fold._dictionary_files(CONFIG_DIR)
    return [key for path in conversion for key in script_fold._ocd2_keys(path) if len(key) > 1]


PADDING = "中華民國憲法規定人民之權利義務，國家應保障其發展。" * 6  # long enough for the table path


def test_a_phrase_that_differs_from_its_characters_is_opencc_s(folder):
    # 畫 alone is 画; in 計畫 OpenCC makes it 划. A table alone would say 计画.
    text = PADDING + "本計畫之執行，依計畫書辦理；畫作另計。" + PADDING
    points = script_fold.np.frombuffer(text.encode("utf-32-le"), dtype=script_fold.np.uint32)
    assert folder._phrase_runs(text, points), "the differing phrase was not found"
    assert folder.convert(text, convert) == convert(text)
    assert "计划之执行" in folder.convert(text, convert)
    assert "画作" in folder.convert(text, convert)


def test_every_phrase_of_the_dictionary_in_context(folder, phrases):
    assert len(phrases) > 100
    for key in phrases:
        for text in (PADDING + key + PADDING, key + PADDING, PADDING + key, PADDING + key + key + "於" + key):
            assert folder.convert(text, convert) in (None, opencc_keep_length(text)), key
            assert analysis._t2s_keep_length(text) == opencc_keep_length(text), key


# Characters of differing phrases and their neighbours, so that phrases form, overlap and break.
_PHRASE_ALPHABET = "計畫書於是乎菟乾隆燥淨沈澱浸覆蓋轍瞭解望徵收信藉口著作甦醒，。 \n中國的发展"


@given(st.text(alphabet=_PHRASE_ALPHABET, min_size=64, max_size=200))
def test_any_mix_of_phrase_characters(text):
    assert analysis._t2s_keep_length(text) == opencc_keep_length(text)


def test_beyond_the_table_and_lone_surrogates_go_to_opencc(folder):
    beyond = PADDING + "\U000e0100" + PADDING  # a variation selector, above every CJK plane
    assert folder.convert(beyond, convert) is None
    assert analysis._t2s_keep_length(beyond) == opencc_keep_length(beyond)
    assert folder.convert(PADDING + "\ud800" + PADDING, convert) is None
    astral = PADDING + "𠀀𠀁經濟" + PADDING  # extension B: inside the table
    assert folder.convert(astral, convert) == opencc_keep_length(astral)


def test_compatibility_ideographs_are_left_to_opencc(folder):
    # OpenCC normalizes U+F900.. before matching phrases: the table never decides them alone.
    text = PADDING + "\uf900\uf901計畫" + PADDING
    assert folder.convert(text, convert) in (None, opencc_keep_length(text))
    assert analysis._t2s_keep_length(text) == opencc_keep_length(text)


def test_a_configuration_it_does_not_know_is_refused(tmp_path):
    (tmp_path / "t2s.json").write_text(json.dumps({"conversion_chain": [
        {"dict": {"type": "text", "file": "TSPhrases.txt"}}]}), encoding="utf-8")
    with pytest.raises(ValueError, match="dictionary type"):
        script_fold.build(tmp_path, convert)
    (tmp_path / "t2s.json").write_text(json.dumps({"conversion_chain": [
        {"dict": {"type": "ocd2", "file": "TSPhrases.ocd2"}}] * 2}), encoding="utf-8")
    with pytest.raises(ValueError, match="2 conversion steps"):
        script_fold.build(tmp_path, convert)
    (tmp_path / "t2s.json").write_text(json.dumps({"conversion_chain": [
        {"dict": {"type": "ocd2", "file": "TSPhrases.ocd2"}}]}), encoding="utf-8")
    (tmp_path / "TSPhrases.ocd2").write_bytes(b"not a dictionary")
    with pytest.raises(ValueError, match="not an OpenCC marisa dictionary"):
        script_fold.build(tmp_path, convert)


def test_same_as_opencc_on_real_articles(folder, shared_dir):
    checked = 0
    for record in corpus_records(shared_dir, 300):
        for text in (record["title"], record["body"][:4000], record["body"][:20000]):
            folded = analysis.fold_width_and_case(text)
            assert analysis._t2s_keep_length(folded) == opencc_keep_length(folded), record["id"]
        checked += 1
    assert checked >= 900


def test_texts_the_phrase_checks_would_cost_more_for_go_to_opencc(folder):
    # The checks are Python per risky character and per character of a run: a text dense with
    # risky characters, or one long run of phrase characters, is OpenCC's whole (same answer).
    dense = "計畫" * 2000
    long_run = PADDING + "一" * (script_fold.MAX_RUN_CHARS + 10) + "計畫" + PADDING
    for text in (dense, long_run):
        assert folder.convert(text, convert) is None
        assert analysis._t2s_keep_length(text) == opencc_keep_length(text)
    # A Traditional article's density (about one risky character in a hundred) stays on the table.
    article = ("依本計畫辦理，並於每年度檢討其執行成效與相關經費之運用情形。" + PADDING) * 10
    assert folder.convert(article, convert) == opencc_keep_length(article)


# Characters width and case folding change or make, beside phrase characters and plain text.
_FOLDED_ALPHABET = "ＡＢｃ１２（）：　ABcİΣσ" + "計畫於是乾隆覆蓋著作，。中國的发展" + " \n"


def _agrees_at_ideographs(text: str) -> None:
    """normalize_ideographs has normalize's answer at its ideographs, and ideographs nowhere else."""
    reference = analysis.normalize(text)
    found = analysis.normalize_ideographs(text)
    assert len(found) == len(reference) == len(text)
    for position, (want, got) in enumerate(zip(reference, found)):
        if analysis.has_cjk(want) or analysis.has_cjk(got):
            assert want == got, (text, position)


def test_the_script_step_needs_no_folding_with_these_dictionaries():
    # False would only cost speed (every Traditional text folded first); this OpenCC must give True.
    assert analysis._script_step_ignores_folding()


@given(st.text(alphabet=_FOLDED_ALPHABET, min_size=0, max_size=200))
def test_ideographs_are_normalize_s_without_folding(text):
    _agrees_at_ideographs(text)
    _agrees_at_ideographs(PADDING + text + PADDING)  # the table's path


def test_ideographs_are_normalize_s_on_real_articles(shared_dir):
    checked = 0
    for record in corpus_records(shared_dir, 300):
        for text in (record["title"], record["body"][:4000]):
            _agrees_at_ideographs(text)
        checked += 1
    assert checked >= 900
