"""Our segmenter gives exactly jieba's tokens (the reference), only faster and cached."""

from __future__ import annotations

import gzip
import itertools
import json

import pytest

from search_service.text import analysis
from search_service.text.segmenter import Segmenter

from ..helpers import REPO

TRICKY = [
    "",
    " ",
    "\r\n\r\n  \t",
    "高新区智慧城市建设",
    "上海市第十三届人民代表大会常务委员会第三十次会议通过",
    "iphone15手机壳 5g手机 c++ 3.5% 2025年12月1日 a-b_c #tag &amp;",
    "王小二在北京清华大学读书，他说：“我爱自然语言处理！”",  # names: the HMM guesses unknown words
    "哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈",
    "的的的的的",
    "𠀀𠀁 emoji 😀 ｆｕｌｌ　ｗｉｄｔｈ İstanbul",
    "長沙市條例（繁體）",
    "第一条 为了规范……制定本条例。\n第二条 本条例适用于本市行政区域内。",
    "区块链+人工智能=数字经济？AI、IoT与5G融合发展",
    "。。。，，，！！？",
    "abc" * 200 + "中文" * 300,
]


def _reference(segmenter: Segmenter, text: str, search: bool) -> list[tuple[str, int, int]]:
    return list(segmenter._jieba.tokenize(text, mode="search" if search else "default"))


@pytest.fixture(scope="module")
def segmenter(jieba_cache) -> Segmenter:
    return analysis.SEGMENTER


@pytest.mark.parametrize("search", [True, False], ids=["search", "default"])
@pytest.mark.parametrize("text", TRICKY)
def test_same_tokens_as_jieba_on_tricky_text(segmenter, text, search):
    norm = analysis.normalize(text)
    assert segmenter.spans(norm, search) == _reference(segmenter, norm, search)
    # Again, now from the block cache.
    assert segmenter.spans(norm, search) == _reference(segmenter, norm, search)


def test_same_tokens_as_jieba_on_the_sample_articles(segmenter):
    lines = (REPO / "samples" / "articles.jsonl").read_text(encoding="utf-8").splitlines()
    texts = [analysis.normalize(json.loads(line)[field]) for line in lines if line.strip()
             for field in ("title", "body")]
    assert len(texts) > 50
    for search in (True, False):
        assert [segmenter.spans(t, search) for t in texts] == [_reference(segmenter, t, search) for t in texts]


@pytest.mark.shared
def test_same_tokens_as_jieba_on_real_articles(segmenter, shared_dir):
    """A slice of every corpus (bench/segmenter.py compares all of them)."""
    compared = 0
    for path in sorted((shared_dir / "corpora").glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in itertools.islice(handle, 0, 2000, 50):
                record = json.loads(line)
                for value in record.values():
                    if isinstance(value, str) and len(value) > 20:
                        norm = analysis.normalize(value[:3000])
                        assert segmenter.spans(norm, True) == _reference(segmenter, norm, True), record.get("id")
                        compared += 1
    assert compared > 50


def test_a_new_word_is_seen_at_once_despite_the_cache(jieba_cache):
    segmenter = Segmenter(cache_blocks=10)
    segmenter.initialize(jieba_cache)
    text = "氪金斯坦特区发布新规"
    before = segmenter.spans(text, False)
    assert ("氪金斯坦特区", 0, 6) not in before
    segmenter.add_word("氪金斯坦特区")
    after = segmenter.spans(text, False)
    assert after[0] == ("氪金斯坦特区", 0, 6)
    assert after == _reference(segmenter, text, False)


def test_the_block_cache_stays_bounded(jieba_cache):
    segmenter = Segmenter(cache_blocks=5)
    segmenter.initialize(jieba_cache)
    for i in range(50):
        segmenter.spans(f"第{i}条，高新区第{i}号", True)
    assert len(segmenter._caches[True]) <= 5
