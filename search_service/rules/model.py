"""What staff rules are, their bounds, and the one validation every door uses (desk forms, the
admin API, ``rules import``): curations (pinned and hidden results of a query), desk synonym
groups, hot-search settings and dictionary-word decisions.

Values are plain JSON-ready dicts, as stored, exported and sent over the API:

* curation ``{"pin": [ids in order], "hide": [ids]}``, keyed by the normalized query;
* synonym group ``{"kind": "two_way", "terms": [...]}`` or ``{"kind": "one_way", "from": term, "to": [...]}``;
* hot settings ``{"length": n, "days": n, "min_searches": n}``, hot pins ``[queries in order]``,
  a hot block ``true`` keyed by the normalized query;
* word decision ``{"status": "proposed" | "accepted" | "rejected"}``.

Every refusal is an :class:`InvalidParameter` (HTTP 400) naming the field and, for a bound, the
limit and the constant that sets it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ..analytics.events import normalize_query
from ..article import character_problem, id_problem
from ..errors import InvalidParameter
from ..text.analysis import has_cjk, normalize

#: Article ids one query may pin.
MAX_PINNED = 20
#: Article ids one query may hide.
MAX_HIDDEN = 100
#: Queries with a curation.
MAX_CURATIONS = 5000
#: Longest query a rule may be written for, in characters (as ``max_query_length``'s default).
MAX_RULE_QUERY_CHARS = 256
#: Longest article id accepted in a rule (as ``max_id_length``'s default).
MAX_RULE_ID_CHARS = 256
#: Desk synonym groups.
MAX_SYNONYM_GROUPS = 2000
#: Terms in one synonym group (a one-way group: its source and targets together).
MAX_GROUP_TERMS = 20
#: Longest synonym term, in characters.
MAX_TERM_CHARS = 64
#: Longest hot-search list readers may be shown.
MAX_HOT_LENGTH = 30
#: Most days of searches the hot list may be computed from (also the analytics retention's use).
MAX_HOT_DAYS = 90
#: Hot entries staff may pin.
MAX_HOT_PINS = 20
#: Hot entries staff may block.
MAX_HOT_BLOCKS = 1000
#: Longest hot entry (pinned or blocked), in characters.
MAX_HOT_ENTRY_CHARS = 64
#: Longest dictionary word, in characters (jieba's dictionary holds words, not sentences).
MAX_WORD_CHARS = 16

HOT_DEFAULTS = {"length": 10, "days": 7, "min_searches": 3}
WORD_STATUSES = ("proposed", "accepted", "rejected")
GROUP_KINDS = ("two_way", "one_way")

# Separators of the synonyms file format (text/synonyms.py) and the desk's one-way arrow:
# a term holding one could not be written back to that format.
_TERM_FORBIDDEN = re.compile(r"[=,，、#>\n\r\t]")
_WORD_CHARS = re.compile(r"[\u3400-\u9fff\uf900-\ufaffA-Za-z0-9]+")


_MISSING = object()


def _fail(message: str, param: str) -> InvalidParameter:
    return InvalidParameter(message, param=param)


# --------------------------------------------------------------------------- queries


def rule_query(text: Any, param: str = "query") -> str:
    """The key a rule is stored under: the query as analytics groups it (width, case, script and
    spaces folded; ``OR``/``AND``/``NOT`` kept), so 高新區 and 高新区 are one rule."""
    if not isinstance(text, str):
        raise _fail(f"{param} must be a string.", param)
    problem = character_problem(param, text)
    if problem:
        raise _fail(problem + ".", param)
    if len(text) > MAX_RULE_QUERY_CHARS:
        raise _fail(f"{param} is {len(text)} characters long; the limit is {MAX_RULE_QUERY_CHARS} "
                    "(rules.model.MAX_RULE_QUERY_CHARS).", param)
    key = normalize_query(text)
    if not key:
        raise _fail(f"{param} is empty: a rule is for a query readers type (the empty query lists the "
                    "latest articles and takes no rule).", param)
    return key


def term_key(term: str) -> str:
    """How a synonym term is matched: normalized like the index, spaces collapsed (as text/synonyms.py)."""
    return " ".join(normalize(term).split())


# --------------------------------------------------------------------------- curations


def _ids(value: Any, param: str, limit: int, constant: str, max_id_chars: int) -> list[str]:
    if value is _MISSING:
        return []
    if not isinstance(value, list):
        raise _fail(f"{param} must be a list of article ids (strings).", param)
    if len(value) > limit:
        raise _fail(f"{param} lists {len(value)} article ids; the limit is {limit} per query "
                    f"(rules.model.{constant}).", param)
    ids: list[str] = []
    for position, item in enumerate(value, 1):
        if not isinstance(item, str) or not item:
            raise _fail(f"{param}[{position}] must be a non-empty string (an article id).", param)
        problem = id_problem(item, max_id_chars)
        if problem:
            raise _fail(f"{param}[{position}]: {problem}.", param)
        if item in ids:
            raise _fail(f"{param} lists {item!r} twice.", param)
        ids.append(item)
    return ids


def curation(value: Any, max_id_chars: int = MAX_RULE_ID_CHARS) -> dict:
    """A validated curation ``{"pin": [...], "hide": [...]}`` from a JSON body.

    An id in both lists is pinned (left out of ``hide``): the later, stronger intent of an editor
    who pinned an article hidden before, and a rule JSON Schema cannot state for the API."""
    if not isinstance(value, dict):
        raise _fail('The body must be a JSON object: {"pin": [article ids], "hide": [article ids]}.', "body")
    unknown = sorted(set(value) - {"pin", "hide"})
    if unknown:
        raise _fail(f"unknown field {unknown[0]!r}; a curation has pin and hide.", unknown[0])
    pin = _ids(value.get("pin", _MISSING), "pin", MAX_PINNED, "MAX_PINNED", max_id_chars)
    hide = [i for i in _ids(value.get("hide", _MISSING), "hide", MAX_HIDDEN, "MAX_HIDDEN", max_id_chars)
            if i not in pin]
    if not pin and not hide:
        raise _fail("pin and hide are both empty: delete the rule instead (DELETE).", "pin")
    return {"pin": pin, "hide": hide}


# --------------------------------------------------------------------------- synonyms


def _term(value: Any, param: str) -> str:
    """A synonym term: surrounding whitespace ignored, inner runs of whitespace made one space."""
    if not isinstance(value, str):
        raise _fail(f"{param} must be a string.", param)
    text = value.strip()
    if not text:
        raise _fail(f"{param} is empty.", param)
    if len(text) > MAX_TERM_CHARS:
        raise _fail(f"{param} is {len(text)} characters long; the limit is {MAX_TERM_CHARS} "
                    "(rules.model.MAX_TERM_CHARS).", param)
    problem = character_problem(param, text)
    if problem:
        raise _fail(problem + ".", param)
    if _TERM_FORBIDDEN.search(text):
        raise _fail(f"{param} {text!r} contains a separator (= , ， 、 # >): write each term on its own.", param)
    return " ".join(text.split())


def _term_list(raw: Any, param: str, low: int, high: int, what: str) -> list[str]:
    """Terms of a list: ``low`` to ``high`` of them, none written twice; terms that are one term once
    folded (width, case, script, spaces) are kept once, as first written."""
    if not isinstance(raw, list) or len(raw) < low:
        raise _fail(f"{param} must be a list of at least {low} {what}.", param)
    if len(raw) > high:
        raise _fail(f"{param} has {len(raw)} terms; the limit is {high} ({what}, rules.model.MAX_GROUP_TERMS).",
                    param)
    for index, term in enumerate(raw, 1):
        if isinstance(term, str) and raw.index(term) < index - 1:
            raise _fail(f"{param} lists {term[:40]!r} twice.", param)
    return _distinct([_term(t, f"{param}[{i}]") for i, t in enumerate(raw, 1)])


def synonym_group(value: Any, param: str = "group", *, drop_idle: bool = False) -> dict | None:
    """A validated group: two-way ``{"kind": "two_way", "terms": [...]}`` (every term finds the
    others) or one-way ``{"kind": "one_way", "from": term, "to": [...]}`` (``from`` also finds
    ``to``, not the reverse). ``id`` (as the API lists groups) is ignored.

    A group that would find nothing new once its terms are folded (two-way: fewer than two
    different terms; one-way: ``to`` only ``from``) is refused, or with ``drop_idle`` None."""
    if not isinstance(value, dict):
        raise _fail(f"{param} must be an object with kind and terms (or from and to).", param)
    kind = value.get("kind", "two_way")
    if not isinstance(kind, str) or kind not in GROUP_KINDS:
        raise _fail(f"{param}.kind must be two_way or one_way; got {str(kind)[:20]!r}.", f"{param}.kind")
    allowed = {"kind", "id", "terms"} if kind == "two_way" else {"kind", "id", "from", "to"}
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise _fail(f"unknown field {unknown[0]!r} in a {kind} group (it has {', '.join(sorted(allowed - {'id'}))}).",
                    f"{param}.{unknown[0]}")
    if "id" in value and not isinstance(value["id"], str):
        raise _fail(f"{param}.id must be a string (the id GET gave the group).", f"{param}.id")
    if kind == "two_way":
        terms = _term_list(value.get("terms"), f"{param}.terms", 2, MAX_GROUP_TERMS, "terms")
        if len(terms) < 2:
            if drop_idle:
                return None
            raise _fail(f"{param}.terms needs at least two different terms after folding width, case, script "
                        "and spaces.", f"{param}.terms")
        return {"kind": "two_way", "terms": terms}
    source = _term(value.get("from"), f"{param}.from")
    targets = [t for t in _term_list(value.get("to"), f"{param}.to", 1, MAX_GROUP_TERMS - 1, "terms besides from")
               if term_key(t) != term_key(source)]
    if not targets:
        if drop_idle:
            return None
        raise _fail(f"{param}.to must name at least one term other than {source!r} after folding width, case, "
                    "script and spaces.", f"{param}.to")
    return {"kind": "one_way", "from": source, "to": targets}


def _distinct(terms: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for term in terms:
        seen.setdefault(term_key(term), term)
    return list(seen.values())


def synonym_groups(value: Any) -> list[dict]:
    """Every group of ``PUT /api/admin/synonyms`` (``{"groups": [...]}``), validated; a group given twice
    (the same terms, in any order, once folded) is kept once, and one that finds nothing new once folded
    is left out (rules JSON Schema cannot state: an API client learns them from the answer, which lists
    the groups kept). ``file_groups``, as GET lists them, may be sent back and is ignored (the file's
    groups are edited in the file)."""
    if not isinstance(value, dict) or not isinstance(value.get("groups"), list):
        raise _fail('The body must be {"groups": [groups]}.', "groups")
    unknown = sorted(set(value) - {"groups", "file_groups"})
    if unknown:
        raise _fail(f"unknown field {unknown[0]!r}; send {{\"groups\": [...]}}.", unknown[0])
    extra = value.get("file_groups", [])
    if not isinstance(extra, list) or not all(isinstance(g, list) and all(isinstance(t, str) for t in g)
                                              for g in extra):
        raise _fail("file_groups (ignored) must be a list of lists of terms, as GET gives it.", "file_groups")
    raw = value["groups"]
    if len(raw) > MAX_SYNONYM_GROUPS:
        raise _fail(f"groups has {len(raw)} groups; the limit is {MAX_SYNONYM_GROUPS} "
                    "(rules.model.MAX_SYNONYM_GROUPS).", "groups")
    groups: dict[tuple, dict] = {}
    for index, raw_group in enumerate(raw, 1):
        group = synonym_group(raw_group, f"groups[{index}]", drop_idle=True)
        if group is not None:
            groups.setdefault(group_identity(group), group)
    return list(groups.values())


def group_identity(group: dict) -> tuple:
    """What makes two groups the same group (order of two-way terms aside)."""
    if group["kind"] == "two_way":
        return ("two_way", tuple(sorted(term_key(t) for t in group["terms"])))
    return ("one_way", term_key(group["from"]), tuple(sorted(term_key(t) for t in group["to"])))


def group_text(group: dict) -> str:
    """A group as staff write it in the desk's form: ``a = b = c`` or ``a => b, c``."""
    if group["kind"] == "two_way":
        return " = ".join(group["terms"])
    return f"{group['from']} => {', '.join(group['to'])}"


def parse_group_text(text: str, param: str = "group") -> dict:
    """The desk form's one line: ``a = b = c`` (two-way) or ``a => b, c`` (one-way)."""
    if not isinstance(text, str) or not text.strip():
        raise _fail(f"{param} is empty: write 甲 = 乙 = 丙 (two-way) or 甲 => 乙, 丙 (one-way).", param)
    if "=>" in text:
        source, _, rest = text.partition("=>")
        targets = [t for t in re.split(r"\s*[,，、]\s*", rest.strip()) if t.strip()]
        group = synonym_group({"kind": "one_way", "from": source, "to": targets}, param)
    else:
        terms = [t for t in re.split(r"\s*[=,，、]\s*", text.strip()) if t.strip()]
        group = synonym_group({"kind": "two_way", "terms": terms}, param)
    assert group is not None  # refused rather than dropped
    return group


# --------------------------------------------------------------------------- hot searches


def _bounded_int(value: Any, param: str, low: int, high: int, constant: str) -> int:
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _fail(f"{param} must be a whole number from {low} to {high} ({constant}); got {str(value)[:20]!r}.",
                    param)
    return value


def hot_settings(value: Any) -> dict:
    """``{"length", "days", "min_searches"}`` validated (missing keys keep their defaults)."""
    if not isinstance(value, dict):
        raise _fail("hot settings must be an object with length, days and min_searches.", "settings")
    unknown = sorted(set(value) - set(HOT_DEFAULTS))
    if unknown:
        raise _fail(f"unknown hot setting {unknown[0]!r}; the settings are length, days and min_searches.",
                    unknown[0])
    merged = {**HOT_DEFAULTS, **value}
    return {"length": _bounded_int(merged["length"], "length", 1, MAX_HOT_LENGTH, "rules.model.MAX_HOT_LENGTH"),
            "days": _bounded_int(merged["days"], "days", 1, MAX_HOT_DAYS, "rules.model.MAX_HOT_DAYS"),
            "min_searches": _bounded_int(merged["min_searches"], "min_searches", 1, 1000, "1 to 1000")}


def hot_entry(value: Any, param: str = "entry") -> str:
    """A hot entry to pin or block, normalized as analytics groups queries."""
    key = rule_query(value, param)
    if len(key) > MAX_HOT_ENTRY_CHARS:
        raise _fail(f"{param} is {len(key)} characters long; the limit is {MAX_HOT_ENTRY_CHARS} "
                    "(rules.model.MAX_HOT_ENTRY_CHARS).", param)
    return key


def hot_pins(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise _fail("pins must be a list of queries.", "pins")
    if len(value) > MAX_HOT_PINS:
        raise _fail(f"pins lists {len(value)} entries; the limit is {MAX_HOT_PINS} (rules.model.MAX_HOT_PINS).",
                    "pins")
    pins = [hot_entry(v, f"pins[{i}]") for i, v in enumerate(value, 1)]
    return list(dict.fromkeys(pins))


# --------------------------------------------------------------------------- words


def word(value: Any, param: str = "word") -> str:
    """A dictionary word: one run of Chinese characters, letters or digits, with a Chinese character."""
    if not isinstance(value, str):
        raise _fail(f"{param} must be a string.", param)
    text = value.strip()
    if not 2 <= len(text) <= MAX_WORD_CHARS:
        raise _fail(f"{param} must be 2 to {MAX_WORD_CHARS} characters (rules.model.MAX_WORD_CHARS); "
                    f"got {len(text)}.", param)
    if not _WORD_CHARS.fullmatch(text) or not has_cjk(text):
        raise _fail(f"{param} {text[:20]!r} must be one run of Chinese characters, letters or digits, with at "
                    "least one Chinese character (no spaces or punctuation).", param)
    return text


def word_status(value: Any, param: str = "status") -> str:
    if value not in WORD_STATUSES:
        raise _fail(f"{param} must be one of {', '.join(WORD_STATUSES)}; got {str(value)[:20]!r}.", param)
    return str(value)
