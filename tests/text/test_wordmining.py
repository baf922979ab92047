"""Mining candidate dictionary words from a corpus."""

from __future__ import annotations

import pytest

from search_service.cli import main
from search_service.text.wordmining import mine_candidates

CONTEXTS = ["今年{w}发展迅速。", "据悉，{w}引进项目。", "专家认为{w}值得关注；", "各地学习{w}经验，",
            "记者走访{w}了解到", "《{w}》报告发布。", "围绕{w}开展调研。", "市民称赞{w}环境"]


@pytest.fixture(autouse=True)
def _segmenter(jieba_cache):
    return jieba_cache


def corpus(word: str) -> list[str]:
    return [context.format(w=word) + "其他内容" * 3 for context in CONTEXTS for _ in range(2)]


def test_an_unknown_term_in_varied_contexts_is_proposed():
    candidates = mine_candidates(corpus("亩均论英雄"), min_count=5, top=10)
    words = [c.word for c in candidates]
    assert "亩均论英雄" in words
    found = candidates[words.index("亩均论英雄")]
    assert found.count == 16 and len(found.jieba_split) > 1
    assert found.dictionary_line().startswith("亩均论英雄 ")


def test_known_words_and_fragments_are_not_proposed():
    words = [c.word for c in mine_candidates(corpus("亩均论英雄"), min_count=5, top=10)]
    assert "其他" not in words  # a dictionary word
    assert "亩均论" not in words and "均论英雄" not in words  # parts of the longer candidate


def test_words_command_reads_files(tmp_path, capsys, monkeypatch):
    path = tmp_path / "a.jsonl"
    lines = [f'{{"id": "{i}", "title": "标题{i}", "body": "{text}"}}' for i, text in enumerate(corpus("亩均论英雄"))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["words", str(path), "--min-count", "5", "--dict-format"]) == 0
    assert "亩均论英雄" in capsys.readouterr().out
