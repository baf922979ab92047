"""The Chinese text pipeline: normalization keeps offsets, tokenizers honour Whoosh's contract."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from search_service.engine.backend.analyzers import BigramTokenizer, WordTokenizer
from search_service.text import analysis
from search_service.text.analysis import bigram_positions, bigram_spans, normalize, query_bigram_groups, query_words

from ..helpers import corpus_records


@pytest.fixture(autouse=True)
def _segmenter(jieba_cache):
    return jieba_cache


def tokens(tokenizer, text, mode="index"):
    return [(t.text, t.pos, t.startchar, t.endchar)
            for t in tokenizer(text, positions=True, chars=True, mode=mode)]


class TestNormalize:
    def test_folds_width_case_and_script(self):
        assert normalize("高新區ＡＢＣ１２３習近平") == "高新区abc123习近平"
        assert normalize("經濟發展") == "经济发展"
        assert normalize("　") == " "

    @pytest.mark.parametrize("text", ["㎡①ﬁ", "İstanbul 高新區", "A\u0130B", "𠀀𠀁經濟", "", "纔"])
    def test_length_is_kept(self, text):
        assert len(normalize(text)) == len(text)

    def test_length_kept_on_real_corpora(self, shared_dir):
        # NFKC would change the length of hundreds of these articles; ours must change none.
        checked = 0
        for record in corpus_records(shared_dir, 400):
            for text in (record["title"], record["body"]):
                assert len(normalize(text)) == len(text), record["id"]
            checked += 1
        assert checked >= 1200


class TestWordTokenizer:
    def test_positions_are_consecutive_ordinals(self):
        toks = tokens(WordTokenizer(), "高新区管委会发布先进制造业集群")
        assert [t[1] for t in toks] == list(range(len(toks)))

    def test_offsets_point_at_original_characters(self):
        text = "我院參加先進製造業集群發展大會"
        for word, _, start, end in tokens(WordTokenizer(), text):
            assert normalize(text[start:end]) == word

    def test_search_mode_indexes_subwords_and_query_mode_does_not(self):
        index_words = [t[0] for t in tokens(WordTokenizer(), "高新区管委会")]
        assert {"高新", "新区", "高新区", "管委会"} <= set(index_words)
        query = [t[0] for t in tokens(WordTokenizer(), "高新区管委会", mode="query")]
        assert query == ["高新区", "管委会"]

    def test_overlapping_search_tokens_keep_their_own_offsets(self):
        text = "中华人民共和国"
        toks = tokens(WordTokenizer(), text)
        spans = {(w, s, e) for w, _, s, e in toks}
        assert ("中华", 0, 2) in spans and ("华人", 1, 3) in spans and ("中华人民共和国", 0, 7) in spans

    def test_traditional_input_gives_simplified_tokens(self):
        words = [t[0] for t in tokens(WordTokenizer(), "經濟開發區", mode="query")]
        assert "经济" in "".join(words) and all("經" not in w for w in words)

    def test_mixed_tokens_are_kept_whole_and_split(self):
        words = [t[0] for t in tokens(WordTokenizer(), "iPhone15和5G在2025年")]
        for expected in ("iphone15", "iphone", "15", "5g", "2025年", "2025"):
            assert expected in words

    def test_stop_words_are_dropped(self):
        words = [t[0] for t in tokens(WordTokenizer(), "发展的经济和社会", mode="query")]
        assert "的" not in words and "和" not in words

    def test_start_pos_and_start_char_are_honoured(self):
        toks = tokens(WordTokenizer(), "智慧城市")
        shifted = [(t.text, t.pos, t.startchar) for t in
                   WordTokenizer()("智慧城市", positions=True, chars=True, start_pos=5, start_char=100)]
        assert [(w, p + 5, s + 100) for w, p, s, _ in toks] == shifted

    def test_user_dictionary_keeps_domain_words_whole(self):
        assert query_words("新质生产力") == ["新质生产力"]
        assert query_words("专精特新企业")[0] == "专精特新"


class TestBigrams:
    def test_a_latin_run_does_not_swallow_the_cjk_run_after_it(self):
        # The fixed _BIGRAM_RUN bug: "5g手机" was one Latin token, so 手机 was unsearchable.
        assert list(bigram_spans("5g手机")) == [(0, "5g", 0, 2), (1, "手机", 2, 4), (2, "机", 3, 4)]
        assert [t[1] for t in bigram_spans("iphone15发布会")] == ["iphone15", "发布", "布会", "会"]

    def test_runs_give_bigrams_and_a_final_character(self):
        assert [t[1] for t in bigram_spans("集群发展")] == ["集群", "群发", "发展", "展"]

    def test_punctuation_breaks_phrases_but_space_does_not(self):
        positions = {text: pos for pos, text, _, _ in bigram_spans("农业,发展 经济")}
        assert positions["发展"] - positions["业"] == 2  # gap after the comma
        assert positions["经济"] - positions["展"] == 1  # no gap for a space

    @pytest.mark.parametrize("text", [
        "", "集群发展", "农业,发展 经济", "5g手机 iphone15发布会", "城市城市城市，城市", "a a a 的的的",
        "！！？？。。……", "長沙市條例（繁體）𠀀𠀁 emoji 😀 İstanbul", "智慧城市" * 50 + "，" + "高新区 " * 30,
    ])
    def test_build_positions_group_the_same_tokens(self, text):
        # The index build's grouping of bigram_spans: a lone position bare, repeats as a list.
        norm = normalize(text)
        expected: dict[str, list[int]] = {}
        for pos, token, _, _ in bigram_spans(norm):
            expected.setdefault(token, []).append(pos)
        got = {token: [p] if isinstance(p, int) else p for token, p in bigram_positions(norm).items()}
        assert got == expected
        assert all(isinstance(p, int) for token, p in bigram_positions(norm).items() if len(expected[token]) == 1)

    def test_offsets_and_positions_through_whoosh_tokenizer(self):
        text = "華為P50發佈"
        toks = tokens(BigramTokenizer(), text)
        assert [t[1] for t in toks] == list(range(len(toks)))
        for word, _, start, end in toks:
            assert normalize(text[start:end]) == word

    def test_query_groups(self):
        assert query_bigram_groups("世界级集群") == [["世界", "界级", "级集", "集群"]]
        assert query_bigram_groups("华") == [["华"]]
        assert query_bigram_groups("农业，发展") == [["农业"], ["发展"]]


def test_initialize_uses_the_given_cache_folder(tmp_path):
    segmenter = analysis.Segmenter()
    segmenter.initialize(tmp_path / "cache")
    assert list(segmenter.spans("高新区", False))
    assert any((tmp_path / "cache").iterdir())


@given(st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=200))
def test_width_folding_is_str_translate_for_any_text(text):
    # Including full-width forms, the ideographic space, astral characters and lone surrogates.
    assert analysis._fold_width(text) == text.translate(analysis._WIDTH_FOLD)


@given(st.text(alphabet="ＡＺａｚ０９，：？！　　 a中國發展\U0001F600", max_size=60))
def test_normalize_keeps_the_length(text):
    assert len(analysis.normalize(text)) == len(text)


def test_request_threads_take_converters_loaded_ahead(monkeypatch):
    # A server's request threads each need a Traditional -> Simplified converter; loaded on a
    # thread's first search it cost that search 0.5-40 ms. prepare_converters loads them first.
    import threading

    import opencc

    made = []

    class Counting(opencc.OpenCC):
        def __init__(self, config):
            made.append(config)
            super().__init__(config)

    monkeypatch.setattr(analysis.opencc, "OpenCC", Counting)
    while not analysis._spare_converters.empty():
        analysis._spare_converters.get_nowait()
    analysis.prepare_converters(2)
    analysis.prepare_converters(2)  # tops up, no more
    assert made == ["t2s", "t2s"]
    text = "中華民國國家發展計畫，於是乎" * 10  # longer than the memo of short texts
    results = []

    def search() -> None:
        results.append(analysis.normalize(text))

    for expected in (["t2s", "t2s"], ["t2s", "t2s"], ["t2s", "t2s", "t2s"]):
        thread = threading.Thread(target=search)
        thread.start()
        thread.join()
        assert made == expected  # the first two threads took a spare; the third loads its own
    assert results == [analysis.normalize(text)] * 3 and "国家发展计划" in results[0]
