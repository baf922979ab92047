"""Marks and snippets are found on normalized text but cut from the original."""

from __future__ import annotations

import pytest

from search_service.text.highlight import Highlighter


@pytest.fixture(autouse=True)
def _segmenter(jieba_cache):
    return jieba_cache


def test_marks_traditional_text_with_simplified_terms():
    assert Highlighter(["发展"]).mark("經濟發展") == "經濟<mark>發展</mark>"


def test_everything_else_is_escaped():
    marked = Highlighter(["集群"]).mark("<script>集群</script>")
    assert marked == "&lt;script&gt;<mark>集群</mark>&lt;/script&gt;"


def test_latin_terms_match_whole_words_only():
    assert Highlighter(["5g"]).mark("15G 5G") == "15G <mark>5G</mark>"


def test_longest_term_wins():
    assert Highlighter(["高新", "高新区"]).mark("高新区") == "<mark>高新区</mark>"


def test_snippet_centres_the_densest_cluster():
    text = "无关内容。" * 60 + "这里讲智慧城市和高新区的建设。" + "其他内容。" * 60
    snippet = Highlighter(["智慧城市", "高新区"]).snippet(text, 60)
    assert "<mark>智慧城市</mark>" in snippet and "<mark>高新区</mark>" in snippet
    assert snippet.startswith("…") and snippet.endswith("…")
    plain = snippet.replace("<mark>", "").replace("</mark>", "").strip("…")
    assert len(plain) <= 60


def test_snippet_without_match_is_the_start():
    assert Highlighter(["不存在"]).snippet("甲" * 200, 50) == "甲" * 50 + "…"


def test_short_text_is_whole():
    assert Highlighter(["城市"]).snippet("智慧城市", 50) == "智慧<mark>城市</mark>"


def test_script_stable_is_true_only_when_opencc_changes_none_of_the_scanned_texts():
    from search_service.text.highlight import SNIPPET_FIRST_SCAN_CHARS, script_stable

    assert script_stable("高新区发展规划", "园区发展，ＡＢＣ与5G。")  # width and case are folded either way
    assert not script_stable("高新區發展", "园区发展")  # Traditional title
    assert not script_stable("园区", "藉此推动")  # a Simplified text OpenCC still rewrites (藉此 -> 借此)
    # 乾隆 stays as it is, but a scan cut between its characters leaves 乾 alone, which OpenCC turns
    # into 干: the check runs on the very texts a snippet scans.
    cut = "文" * (SNIPPET_FIRST_SCAN_CHARS - 1) + "乾隆年间"
    assert script_stable("", "乾隆年间") and not script_stable("", cut)


def test_a_script_stable_text_is_marked_and_cut_exactly_as_without_the_hint():
    from search_service.text.highlight import SNIPPET_FIRST_SCAN_CHARS, script_stable

    bodies = ["园区发展，ＡＢＣ与abc。" * 40, "乾隆年间的园区。", "文" * (SNIPPET_FIRST_SCAN_CHARS - 1) + "乾隆年间园区",
              "无关的文字。" * 900 + "园区发展" + "后文。" * 10, "",
              # Full-width punctuation without full-width letters: folded only for terms that need it.
              "学习c＋＋，园区（abc）。", "用Ｃ＋＋写：smart　city。"]
    # Terms of ideographs only (the last two sets) are looked for in a stable text without folding it.
    for terms in (["发展", "乾隆", "abc", "园区"], ["c++", "园区"], ["smart city"], ["abc)"], ["发展", "园区"], ["乾隆"]):
        highlighter = Highlighter(terms)
        for body in bodies:
            for title in ("园区发展", "ABC 园区", "", "c＋＋园区"):
                stable = script_stable(title, body)
                assert highlighter.snippet(body, 120, script_stable=stable) == highlighter.snippet(body, 120)
                assert highlighter.mark(title, script_stable=stable) == highlighter.mark(title)
    assert "<mark>c＋＋</mark>" in Highlighter(["c++"]).snippet("学习c＋＋，园区。", script_stable=True)


def test_the_densest_cluster_is_the_one_a_plain_count_of_every_window_finds():
    import random

    from search_service.text.highlight import _densest_cluster

    def by_sets(spans, matched, length):
        # The definition, as it read before the counts followed the window: a set per window.
        best, found, right = (-1, -1), (0, 0), 0
        for left in range(len(spans)):
            right = max(right, left)
            while right + 1 < len(spans) and spans[right + 1][1] - spans[left][0] <= length:
                right += 1
            window = matched[left:right + 1]
            if (len(set(window)), len(window)) > best:
                best, found = (len(set(window)), len(window)), (spans[left][0], spans[right][1])
        return found

    rng = random.Random(7)
    for _ in range(1000):
        spans, matched, position = [], [], 0
        while position < 600:
            position += rng.randint(0, 40)
            size = rng.choice([1, 2, 2, 3, 150])  # 150: a match longer than the window
            spans.append((position, position + size))
            matched.append(rng.choice(["园区", "发展", "规划", "x"]))
            position += size
        length = rng.choice([20, 60, 120])
        assert _densest_cluster(spans, matched, length) == by_sets(spans, matched, length)


def _regex_matches(terms, text):
    """What the matches were before str.find: one regex of the terms, longest first."""
    import re

    from search_service.text.analysis import has_cjk

    unique = sorted(set(terms), key=len, reverse=True)
    parts = [rf"(?<![a-z0-9]){re.escape(t)}(?![a-z0-9])" if not has_cjk(t) and t.isascii() and t[0].isalnum()
             else re.escape(t) for t in unique]
    found = list(re.finditer("|".join(parts), text))
    return [m.span() for m in found], [m.group() for m in found]


def test_matches_found_by_str_find_are_the_regex_matches():
    import random

    from search_service.text.highlight import _found

    # Overlapping terms (aa / ba on "baaa": the regex takes ba, then aa), one inside another,
    # Latin words at and away from word edges, runs of one character.
    rng = random.Random(11)
    alphabet = ["a", "b", "5", "g", "发", "展", " ", "-"]
    vocabulary = ["aa", "ba", "a", "5g", "g", "发展", "展", "发展发", "b-a", "ab5"]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        terms = sorted(set(rng.sample(vocabulary, rng.randint(1, 5))), key=len, reverse=True)
        whole = [not any("\u4e00" <= c <= "\u9fff" for c in t) and t.isascii() and t[0].isalnum() for t in terms]
        assert _found(text, terms, whole) == _regex_matches(terms, text), (terms, text)
        # With a limit: the same, or None exactly when the terms occur more often (overlapping).
        occurrences = sum(sum(text.startswith(t, i) for i in range(len(text))) for t in terms)
        limited = _found(text, terms, whole, 3)
        assert (limited is None) == (occurrences > 3), (terms, text)
        assert limited is None or limited == _regex_matches(terms, text), (terms, text)


@pytest.mark.parametrize("terms, text", [
    (["发展"], "发展" * 100),  # more matches than str.find is used for: the regex
    ([f"词{i}" for i in range(12)] + ["发展"], "经济发展，词3和词11。"),  # more terms than that
    (["高新", "高新区", "5g"], "高新区的5G网络，15G不算，高新技术"),
])
def test_marks_are_the_same_whichever_way_the_matches_are_found(terms, text):
    from search_service.text.analysis import normalize

    assert Highlighter(terms).spans(text) == _regex_matches([normalize(t) for t in terms], normalize(text))[0]


def test_a_traditional_text_is_marked_as_its_normalized_form_says():
    # Not script-stable: the text is converted to Simplified; for terms of ideographs only without
    # folding width and case first (analysis.normalize_ideographs), with the same marks.
    from search_service.text.analysis import normalize

    bodies = ["依本計畫辦理ＡＢＣ，於是（ＩＴ）產業發展。" * 30, "計畫ＸＹ發展", "ＡＢ　發展İΣ計畫" * 5]
    for terms in (["计划", "发展"], ["产业"], ["发展", "ab"], ["計畫"]):
        wanted = [normalize(t) for t in terms]
        for body in bodies:
            assert Highlighter(wanted).spans(body) == _regex_matches(wanted, normalize(body))[0], (terms, body)


def test_rendering_escapes_exactly_as_escaping_every_piece():
    import html
    import random

    from search_service.text.highlight import MARK_CLOSE, MARK_OPEN, _flow, _render

    def every_piece(text, spans, start, end):
        # The definition: each piece between marks and each marked text escaped on its own.
        out, cursor = [], start
        for s, e in spans:
            if s < cursor or e > end:
                continue
            out += [html.escape(_flow(text, cursor, s)), MARK_OPEN + html.escape(text[s:e]) + MARK_CLOSE]
            cursor = e
        return "".join(out + [html.escape(_flow(text, cursor, end))])

    rng = random.Random(5)
    alphabet = ["园", "区", "a", " ", "\n", "&", "<", ">", '"', "'", "。"]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        start = rng.randint(0, len(text))
        end = rng.randint(start, len(text))
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, 2 * rng.randint(0, 3))))
        spans = list(zip(cuts[::2], cuts[1::2]))
        assert _render(text, spans, start, end) == every_piece(text, spans, start, end), (text, spans, start, end)
