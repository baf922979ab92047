"""Text cleaning applied once, at ingest, to every article field.

Three jobs, all pure functions on strings (no Flask, no Whoosh):

* :func:`strip_ruby` removes ruby (pinyin) annotations that plain-text
  extraction flattened into the text: ``高新區(qū)新聞`` → ``高新區新聞``.
* :func:`collapse_whitespace` squeezes runs of spaces (ASCII, U+3000, NBSP…)
  to one space while keeping paragraph breaks as single ``"\\n"``.
* :func:`parse_date` reads the date spellings found in the site's pages and
  in the corpora and returns a :class:`datetime.date`.

Cleaning changes the *stored* text (what users see); the script-preserving
normalization for matching (Traditional → Simplified, full-width → half-width)
belongs to the analyzers, not here.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

__all__ = [
    "strip_ruby",
    "is_pinyin_syllable",
    "collapse_whitespace",
    "collapse_to_line",
    "parse_date",
]

# --------------------------------------------------------------------------
# Ruby annotations
# --------------------------------------------------------------------------

# Every Mandarin syllable in Hanyu Pinyin without its tone (the inventory of
# pypinyin's character dictionary, ü written as ü), plus the interjection
# syllables m, n, ng, hm, hng and ê. Checking a candidate against this set is
# what keeps `(lux)`, `(port)`, `(café)` and other real words in parentheses
# from being mistaken for an annotation.
_SYLLABLES = frozenset(
    """
    a ai an ang ao ba bai ban bang bao bei ben beng bi bian biang biao bie bin bing bo bong bu
    ca cai can cang cao ce cei cen ceng cha chai chan chang chao che chen cheng chi chong chou
    chu chua chuai chuan chuang chui chun chuo ci cong cou cu cuan cui cun cuo da dai dan dang
    dao de dei den deng di dia dian diao die din ding diu dong dou du duan dui dun duo e ei en
    eng er fa fan fang fei fen feng fiao fo fou fu ga gai gan gang gao ge gei gen geng gong gou
    gu gua guai guan guang gui gun guo ha hai han hang hao he hei hen heng hm hng hong hou hu
    hua huai huan huang hui hun huo ji jia jian jiang jiao jie jin jing jiong jiu ju juan jue
    jun ka kai kan kang kao ke kei ken keng kong kou ku kua kuai kuan kuang kui kun kuo la lai
    lan lang lao le lei len leng li lia lian liang liao lie lin ling liu lo long lou lu luan lun
    luo lü lüe m ma mai man mang mao me mei men meng mi mian miao mie min ming miu mo mou mu n
    na nai nan nang nao ne nei nen neng ng ni nia nian niang niao nie nin ning niu nong nou nu
    nuan nun nuo nü nüe o ou pa pai pan pang pao pei pen peng pi pian piao pie pin ping po pou
    pu qi qia qian qiang qiao qie qin qing qiong qiu qu quan que qun ran rang rao re ren reng
    ri rong rou ru rua ruan rui run ruo sa sai san sang sao se sen seng sha shai shan shang shao
    she shei shen sheng shi shou shu shua shuai shuan shuang shui shun shuo si song sou su suan
    sui sun suo ta tai tan tang tao te tei teng ti tian tiao tie ting tong tou tu tuan tui tun
    tuo wa wai wan wang wei wen weng wo wong wu xi xia xian xiang xiao xie xin xing xiong xiu xu
    xuan xue xun ya yan yang yao ye yi yin ying yo yong you yu yuan yue yun za zai zan zang zao
    ze zei zen zeng zha zhai zhan zhang zhao zhe zhei zhen zheng zhi zhong zhou zhu zhua zhuai
    zhuan zhuang zhui zhun zhuo zi zong zou zu zuan zui zun zuo ê
    """.split()
)

# Tone-marked letter -> its toneless base letter.
_TONE_BASE = {
    **dict.fromkeys("āáǎà", "a"),
    **dict.fromkeys("ēéěè", "e"),
    **dict.fromkeys("īíǐì", "i"),
    **dict.fromkeys("ōóǒò", "o"),
    **dict.fromkeys("ūúǔù", "u"),
    **dict.fromkeys("ǖǘǚǜ", "ü"),
    **dict.fromkeys("ńňǹ", "n"),
    "ḿ": "m",
}
_TONE_MARKED = "".join(_TONE_BASE)

# A CJK ideograph (BMP blocks, compatibility ideographs, extension planes, 〇).
_CJK = "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
# Letters allowed inside an annotation: plain lowercase latin, ü, the
# precomposed tone-marked vowels, and the combining tone marks (macron, acute,
# caron, grave) in case the text arrived decomposed (NFD).
_ANNOTATION_CHARS = "a-zü" + _TONE_MARKED + "\u0300\u0301\u0304\u030c"

# A candidate: an annotation in ASCII () or full-width （） directly after a
# CJK character. The length bound is loose (combining marks add code points);
# the syllable check below decides.
_CANDIDATE = re.compile(
    rf"(?<=[{_CJK}])(?:\(([{_ANNOTATION_CHARS}]{{1,12}})\)|（([{_ANNOTATION_CHARS}]{{1,12}})）)"
)


def _syllable_kind(candidate: str) -> str | None:
    """Classify an annotation candidate: ``"toned"``, ``"plain"`` or None.

    ``"toned"``: exactly one tone mark and a valid syllable once it is removed.
    ``"plain"``: no tone mark and a valid syllable (neutral tone, or a page that
    writes pinyin without tones). None: not pinyin at all.
    """
    letters = unicodedata.normalize("NFC", candidate)
    if not 1 <= len(letters) <= 7:
        return None
    marks = sum(1 for ch in letters if ch in _TONE_BASE)
    if marks > 1:
        return None
    base = "".join(_TONE_BASE.get(ch, ch) for ch in letters).replace("v", "ü")
    if base not in _SYLLABLES:
        return None
    return "toned" if marks == 1 else "plain"


def is_pinyin_syllable(text: str) -> bool:
    """True if ``text`` is one Hanyu Pinyin syllable, with or without a tone mark."""
    return _syllable_kind(text) is not None


def strip_ruby(text: str) -> str:
    """Remove flattened ruby pinyin that follows a CJK character.

    ``高新區(qū)新聞`` → ``高新區新聞``; ``經(jīng)濟(jì)`` → ``經濟``; full-width
    ``發（fā）展`` → ``發展``. Ordinary parentheses survive: ``大会(2025)``,
    ``(GDP)``, ``(試行)``, ``iPhone (pro)``, ``有效水深（m）``.

    Rules, chosen against false positives measured on the corpora (units such
    as ``（m）``, ``（lux）``, glosses such as ``物（object）``):

    * the parenthesised text must be a single valid pinyin syllable;
    * a tone-marked syllable (``qū``) is always an annotation;
    * a toneless syllable (``de``, ``men``, ``a``, ``m``) is stripped only when the
      same text also carries tone-marked annotations, i.e. when the text is
      demonstrably ruby-flattened; otherwise it is left alone.
    """
    # Fast path: most text has no parentheses at all.
    if "(" not in text and "（" not in text:
        return text

    found = [(m, _syllable_kind(m.group(1) or m.group(2))) for m in _CANDIDATE.finditer(text)]
    if not found:
        return text
    ruby_flattened = any(kind == "toned" for _, kind in found)

    pieces: list[str] = []
    last = 0
    for match, kind in found:
        if kind == "toned" or (kind == "plain" and ruby_flattened):
            pieces.append(text[last : match.start()])
            last = match.end()
    if last == 0:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


# --------------------------------------------------------------------------
# Whitespace
# --------------------------------------------------------------------------

# \s in a str pattern covers ASCII whitespace, U+3000 (ideographic space),
# U+00A0 (no-break space), U+2000–U+200A and friends.
_SPACES = re.compile(r"\s+")
# Zero-width characters that scraped pages carry but that are never content;
# left in, they split words invisibly. (ZWJ U+200D is kept: emoji need it.)
_INVISIBLE = re.compile("[\u200b\u2060\ufeff]")


def collapse_whitespace(text: str) -> str:
    """Collapse whitespace runs to one space, keeping paragraphs apart.

    Each line (``\\n``, ``\\r\\n``, ``\\r``, U+2028/2029… all count as breaks) has
    its runs of whitespace, including U+3000 and NBSP, squeezed to one ASCII
    space and is stripped; blank lines are dropped; the remaining lines are
    joined with a single ``"\\n"``. Zero-width spaces and BOMs are removed.

    >>> collapse_whitespace("  第一段\\u3000 内容 \\r\\n\\r\\n\\n第二段\\xa0 ")
    '第一段 内容\\n第二段'
    """
    if _INVISIBLE.search(text):
        text = _INVISIBLE.sub("", text)
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def collapse_to_line(text: str) -> str:
    """Like :func:`collapse_whitespace` but joins everything into one line.

    For single-line fields (title, category, source) where a stray newline
    would otherwise survive as a paragraph break.
    """
    return " ".join(collapse_whitespace(text).split("\n"))


# --------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------

# Year, month, day with one separator used consistently (-, /, .), or the
# Chinese 年/月/日 form; optionally followed by a time (space or "T"), with
# optional seconds, fraction and UTC offset. \d also accepts full-width digits.
_DATE = re.compile(
    r"""
    ^\s*
    (?:
        (?P<y>\d{4}) (?P<sep>[-/.]) (?P<m>\d{1,2}) (?P=sep) (?P<d>\d{1,2})
      | (?P<cy>\d{4}) \s*年\s* (?P<cm>\d{1,2}) \s*月\s* (?P<cd>\d{1,2}) \s*[日号號]?
    )
    (?:
        (?:\s+|T)
        (?P<H>\d{1,2}) : (?P<M>\d{2}) (?: : (?P<S>\d{2}) (?:[.,]\d+)? )?
        \s* (?:Z|[+-]\d{2}:?\d{2})?
    )?
    \s*$
    """,
    re.VERBOSE,
)

_DATE_HELP = "write it as YYYY-MM-DD (2025/9/11, 2025.9.11, 2025年9月11日 and ISO datetimes also work)"


def parse_date(value: str | dt.date) -> dt.date:
    """Parse a date as the site and the corpora write it.

    Accepted: ``2025-09-11``, ``2025/9/11``, ``2025.9.11``, ``2025年9月11日``,
    ``2025-09-11 10:22:33`` and ISO datetimes such as
    ``2025-09-11T10:22:33.5+08:00``. A time part is validated and then dropped:
    the date is the calendar date as written (no time-zone conversion, so an
    article dated on the site keeps the day it shows). A :class:`datetime.date`
    or :class:`datetime.datetime` is accepted as is.

    Raises :class:`ValueError` with a message that names the value and says how
    to write it, for unknown formats and impossible dates (``2025-02-30``).
    Raises :class:`TypeError` for anything that is not a string or a date.
    """
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        raise TypeError(f"a date must be a string, got {type(value).__name__} {value!r}")

    match = _DATE.match(value)
    if match is None:
        raise ValueError(f"unrecognised date {value!r}; {_DATE_HELP}")
    year = int(match["y"] or match["cy"])
    month = int(match["m"] or match["cm"])
    day = int(match["d"] or match["cd"])
    try:
        date = dt.date(year, month, day)
    except ValueError as exc:  # e.g. "day is out of range for month"
        raise ValueError(f"impossible date {value!r} ({exc}); {_DATE_HELP}") from None
    if match["H"] is not None:
        hour, minute = int(match["H"]), int(match["M"])
        second = int(match["S"]) if match["S"] is not None else 0
        # 24:00 and leap seconds are not worth supporting; say what is wrong.
        if hour > 23 or minute > 59 or second > 59:
            raise ValueError(f"impossible time in date {value!r}; {_DATE_HELP}")
    return date
