"""The site's categories and the mapping of any spelling to the canonical name.

The 高新院 site has 13 categories, listed in its menu (the seed page shows them
in Traditional script with flattened ruby: ``高新區(qū)新聞``). The canonical
name of a site category is its Simplified spelling; every way the pages write
it (Traditional, Simplified, with annotations, ``智慧城市NEWS``) maps to it, so
the category facet has one bucket per category.

Categories that are not the site's (the corpora bring ``新闻联播``,
``行政＞內政部``, ``IT之家`` …) are only cleaned, never converted: turning
Taiwan's ``行政＞內政部`` into Simplified would misrepresent the source.
"""

from __future__ import annotations

import functools
import threading
import unicodedata

from .text.cleaning import collapse_to_line, strip_ruby

__all__ = ["SITE_CATEGORIES", "canonical_category", "is_site_category"]

#: The site's categories in menu order, canonical (Simplified) spelling.
SITE_CATEGORIES: tuple[str, ...] = (
    "高新院新闻",
    "政策解读",
    "高新区新闻",
    "区域经济研究",
    "经济开发区新闻",
    "科技创新",
    "战略性新兴产业研究",
    "行业洞见",
    "一带一路新闻",
    "智慧城市案例",
    "产业规划",
    "园区规划",
    "智慧城市news",
)

# OpenCC loads its dictionaries on construction (tens of milliseconds), so the
# converter is built on first use and shared; the lock makes that first use
# safe when ingest runs in a thread.
_converter = None
_converter_lock = threading.Lock()


def _t2s(text: str) -> str:
    """Traditional → Simplified with OpenCC ``t2s`` (created once, lazily)."""
    global _converter
    if _converter is None:
        with _converter_lock:
            if _converter is None:
                import opencc  # imported here so importing this module stays cheap

                _converter = opencc.OpenCC("t2s")
    return _converter.convert(text)


def _match_key(name: str) -> str:
    """The comparison key of a category name: script-, width-, case- and space-blind.

    NFKC folds full-width letters (``ＮＥＷＳ``); ``casefold`` handles ``NEWS``;
    spaces are dropped so ``智慧城市 news`` still matches. Only used for lookup,
    never shown.
    """
    folded = unicodedata.normalize("NFKC", _t2s(name)).casefold()
    return "".join(folded.split())


_SITE_KEYS: dict[str, str] | None = None


def _site_keys() -> dict[str, str]:
    global _SITE_KEYS
    if _SITE_KEYS is None:
        _SITE_KEYS = {_match_key(name): name for name in SITE_CATEGORIES}
    return _SITE_KEYS


# Corpora repeat a handful of category strings tens of thousands of times.
@functools.lru_cache(maxsize=4096)
def canonical_category(name: str) -> str:
    """Return the canonical name of a category.

    Ruby annotations are stripped and whitespace collapsed to single spaces
    (one line). If the result is a site category in any script, case or width
    (``高新區(qū)新聞``, ``高新區新聞``, ``高新区新闻``, ``智慧城市NEWS``), its
    canonical Simplified name from :data:`SITE_CATEGORIES` is returned.
    Anything else is returned cleaned but otherwise unchanged (same script).
    ``""`` stays ``""``.
    """
    cleaned = collapse_to_line(strip_ruby(name))
    if not cleaned:
        return ""
    return _site_keys().get(_match_key(cleaned), cleaned)


def is_site_category(name: str) -> bool:
    """True if ``name`` is (a spelling of) one of the site's 13 categories."""
    return canonical_category(name) in SITE_CATEGORIES
