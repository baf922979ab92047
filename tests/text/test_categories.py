"""Tests for search_service.categories."""

from __future__ import annotations

from pathlib import Path

import pytest

from search_service.categories import SITE_CATEGORIES, canonical_category, is_site_category

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SEED = SHARED / "seed" / "achie_article_page.txt"


def test_thirteen_categories_in_menu_order() -> None:
    assert len(SITE_CATEGORIES) == 13
    assert len(set(SITE_CATEGORIES)) == 13
    assert SITE_CATEGORIES[0] == "高新院新闻"
    assert SITE_CATEGORIES[-1] == "智慧城市news"


def test_canonical_names_map_to_themselves() -> None:
    for name in SITE_CATEGORIES:
        assert canonical_category(name) == name


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("高新院新聞", "高新院新闻"),
        ("政策解讀", "政策解读"),
        ("高新區(qū)新聞", "高新区新闻"),
        ("區(qū)域經(jīng)濟(jì)研究", "区域经济研究"),
        ("經濟開發區新聞", "经济开发区新闻"),
        ("科技創(chuàng)新", "科技创新"),
        ("戰略性新興產業研究", "战略性新兴产业研究"),
        ("行業洞見", "行业洞见"),
        ("一帶一路新聞", "一带一路新闻"),
        ("產業規劃", "产业规划"),
        ("園區(qū)規(guī)劃", "园区规划"),
        ("智慧城市NEWS", "智慧城市news"),
        ("智慧城市News", "智慧城市news"),
        ("智慧城市 news", "智慧城市news"),
        ("智慧城市ｎｅｗｓ", "智慧城市news"),
        ("  行业洞见\u3000", "行业洞见"),
    ],
)
def test_spellings_of_site_categories(spelling: str, canonical: str) -> None:
    assert canonical_category(spelling) == canonical
    assert is_site_category(spelling)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("新闻联播", "新闻联播"),
        ("行政＞內政部", "行政＞內政部"),  # Traditional stays Traditional
        ("廢止法規＞行政＞經濟部", "廢止法規＞行政＞經濟部"),
        ("  IT之家 ", "IT之家"),
        ("财新网 -\n首页", "财新网 - 首页"),
        ("界面新闻:   财经", "界面新闻: 财经"),
        ("", ""),
    ],
)
def test_other_categories_only_cleaned(name: str, expected: str) -> None:
    assert canonical_category(name) == expected
    assert not is_site_category(name)


@pytest.mark.shared
def test_seed_menu_lists_the_site_categories() -> None:
    if not SEED.exists():
        pytest.skip(f"shared data not available: {SEED}")
    menu = [
        line[2:]
        for line in SEED.read_text(encoding="utf-8").splitlines()
        if line.startswith("- ")
    ]
    assert tuple(canonical_category(item) for item in menu) == SITE_CATEGORIES
