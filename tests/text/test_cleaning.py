"""Tests for search_service.text.cleaning: ruby stripping, whitespace, dates."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from search_service.text.cleaning import (
    collapse_to_line,
    collapse_whitespace,
    is_pinyin_syllable,
    parse_date,
    strip_ruby,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SEED = SHARED / "seed" / "achie_article_page.txt"

# A parenthesised run of latin letters with a tone mark: what must not survive.
TONE_ANNOTATION = re.compile(r"[(（][a-zü]*[āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜńňǹḿ][a-zü]*[)）]")


# -- strip_ruby ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("高新區(qū)新聞", "高新區新聞"),
        ("經(jīng)濟(jì)", "經濟"),
        ("發(fā)展", "發展"),
        ("機(jī)構(gòu)", "機構"),
        ("戰(zhàn)略性新興產(chǎn)業(yè)研究", "戰略性新興產業研究"),
        ("科技創(chuàng)新", "科技創新"),
        # full-width parentheses
        ("發（fā）展", "發展"),
        # ü with and without tone, ń
        ("綠(lǜ)色", "綠色"),
        ("嗯(ń)", "嗯"),
        # decomposed tone mark (q + u + combining macron)
        ("區(qu\u0304)", "區"),
    ],
)
def test_strip_ruby_removes_annotations(text: str, expected: str) -> None:
    assert strip_ruby(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "先进制造业集群发展大会(2025)在广州举办",
        "国内生产总值(GDP)增长",
        "管理办法(試行)",
        "国家标准（CNS）",
        "the iPhone (pro) and Apple (inc)",
        "abc(qū)",  # annotation-like, but after latin text: not ruby
        "有效水深（m）",  # a unit: toneless, and no ruby elsewhere in the text
        "照度基準（lux）",
        "作为“物（object）”的存在",
        "其（a）系列",
        "(qū) at the start",
        "区(café)",  # tone mark, but not a pinyin syllable
        "区(qūqū)",  # two tone marks: not one syllable
        "",
        "没有括号",
    ],
)
def test_strip_ruby_keeps_ordinary_parentheses(text: str) -> None:
    assert strip_ruby(text) == text


def test_strip_ruby_toneless_syllables_only_in_ruby_flattened_text() -> None:
    # Neutral-tone annotations carry no tone mark; they are stripped when the
    # same text shows tone-marked annotations, and left alone otherwise.
    assert strip_ruby("我們(men)的(de)區(qū)") == "我們的區"
    assert strip_ruby("我們(men)的(de)") == "我們(men)的(de)"


def test_is_pinyin_syllable() -> None:
    assert is_pinyin_syllable("zhuàng")
    assert is_pinyin_syllable("lü") and is_pinyin_syllable("lv") and is_pinyin_syllable("lǜ")
    assert not is_pinyin_syllable("lux")
    assert not is_pinyin_syllable("chuangs")
    assert not is_pinyin_syllable("")


@pytest.mark.shared
def test_strip_ruby_on_seed_page() -> None:
    if not SEED.exists():
        pytest.skip(f"shared data not available: {SEED}")
    original = SEED.read_text(encoding="utf-8")
    assert TONE_ANNOTATION.search(original)  # the page really has the problem
    cleaned = strip_ruby(original)
    assert TONE_ANNOTATION.search(cleaned) is None
    assert re.search(r"[(（][a-z]{1,7}[)）]", cleaned) is None
    for word in ("先進制造業", "集群發展促進機構", "高新區新聞", "經濟開發區新聞", "粵港澳", "段錚"):
        assert word in cleaned
    assert "先進制造業集群發展大會(2025)" in cleaned  # ordinary parentheses survive
    assert len(cleaned.splitlines()) == len(original.splitlines())


# -- collapse_whitespace --------------------------------------------------------


def test_collapse_whitespace_spaces_and_paragraphs() -> None:
    text = "  第一段\u3000\u3000内容\xa0 \t继续 \r\n\r\n\n  第二段  \n\u3000\n第三段"
    assert collapse_whitespace(text) == "第一段 内容 继续\n第二段\n第三段"


def test_collapse_whitespace_other_line_breaks_and_invisibles() -> None:
    assert collapse_whitespace("甲\r乙\u2029丙") == "甲\n乙\n丙"
    assert collapse_whitespace("\ufeff高\u200b新区") == "高新区"
    assert collapse_whitespace(" \u3000\n\t ") == ""


def test_collapse_to_line() -> None:
    assert collapse_to_line(" 标题\n 第二行\u3000 ") == "标题 第二行"


# -- parse_date -------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "2025-09-11",
        "2025-9-11",
        "2025/9/11",
        "2025/09/11",
        "2025.9.11",
        "2025年9月11日",
        "2025 年 9 月 11 日",
        "2025-09-11 10:22:33",
        "2025-09-11 10:22",
        "2025-09-11T10:22:33",
        "2025-09-11T10:22:33.123456",
        "2025-09-11T10:22:33Z",
        "2025-09-11T23:59:59+08:00",
        "  2025-09-11  ",
        "２０２５年９月１１日",
    ],
)
def test_parse_date_accepts(value: str) -> None:
    assert parse_date(value) == dt.date(2025, 9, 11)


def test_parse_date_passes_dates_through() -> None:
    assert parse_date(dt.date(2020, 1, 2)) == dt.date(2020, 1, 2)
    assert parse_date(dt.datetime(2020, 1, 2, 3, 4)) == dt.date(2020, 1, 2)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2025-02-30", "impossible date '2025-02-30' (day is out of range for month)"),
        ("2025-13-01", "impossible date '2025-13-01' (month must be in 1..12)"),
        ("2025-09-11 25:00", "impossible time in date '2025-09-11 25:00'"),
        ("11/09/2025", "unrecognised date '11/09/2025'"),
        ("2025-9/11", "unrecognised date '2025-9/11'"),
        ("2025-09", "unrecognised date '2025-09'"),
        ("yesterday", "unrecognised date 'yesterday'"),
        ("", "unrecognised date ''"),
    ],
)
def test_parse_date_rejects_with_clear_message(value: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_date(value)
    assert str(info.value).startswith(message)
    assert "write it as YYYY-MM-DD" in str(info.value)


def test_parse_date_wrong_type() -> None:
    with pytest.raises(TypeError, match="a date must be a string, got int 20250911"):
        parse_date(20250911)  # type: ignore[arg-type]
