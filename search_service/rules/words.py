"""Dictionary words: proposals with their evidence, staff decisions, and the words in effect.

Proposals come from two sources, with counts and example contexts:

* **analytics** (:func:`analytics_proposals`): reader searches (script channel excluded) of the last
  ``days`` that were unfound or refined (another page, order or filter of the same query), whose
  query is one Chinese term that jieba cuts into pieces (:func:`analytics.dictionary_hint`);
* **corpus** (:func:`corpus_proposals`): ``search-service words``' miner
  (:func:`text.wordmining.mine_candidates`) over the live articles, run by the desk as a job.

A word staff *accept* is used by the next full build (the desk's reindex job, or ``reindex`` /
``index --rebuild`` once the CLI calls :func:`prepare_segmenter`), which records the words it
used as the *dictionary in effect*; every server process then teaches them to its segmenter
(:func:`teach_segmenter`, from :mod:`.source`), so queries are cut as the index was. A *rejected*
word is never proposed again (its decision stays in the rules file).
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..analytics import dictionary_hint
from ..errors import AnalyticsUnavailable, SearchError
from ..text.analysis import SEGMENTER, normalize
from .store import RulesDB

log = logging.getLogger(__name__)

#: Characters shown on each side of a word in a context.
CONTEXT_CHARS = 18
#: Contexts kept per word.
CONTEXTS = 3
#: Most proposals one refresh from analytics takes.
ANALYTICS_PROPOSALS = 200

_lock = threading.Lock()
# Words this process taught its segmenter (the words in effect it did not know already).
_taught: set[str] = set()


# --------------------------------------------------------------------------- the segmenter


def teach_segmenter(words: Iterable[str]) -> bool:
    """Make this process's segmenter know exactly ``words`` besides its own dictionaries.

    Words it knows already (jieba's dictionary, the domain and user dictionaries) are left as
    they are; words taught earlier and no longer in ``words`` are forgotten when the segmenter
    can (``Segmenter.remove_word``), else at the next restart. True when anything changed.
    """
    wanted = set(words)
    with _lock:
        known = SEGMENTER.dictionary()
        new = [w for w in sorted(wanted) if w not in _taught and not known.get(w)]
        gone = sorted(_taught - wanted)
        for word in new:
            SEGMENTER.add_word(word)
            _taught.add(word)
        remover = getattr(SEGMENTER, "remove_word", None)
        removed = False
        for word in gone:
            if remover is None:
                log.info("rules: %r left the dictionary; this process forgets it at its next restart", word)
                continue
            remover(word)
            _taught.discard(word)
            removed = True
        return bool(new) or removed


def accepted_words(db: RulesDB) -> list[str]:
    """The words staff accepted, sorted."""
    return sorted(item.key for item in db.items("word") if item.value.get("status") == "accepted")


def prepare_segmenter(index_dir: str | Path, *, build: bool, rules_db: str = "") -> list[str]:
    """Teach this process's segmenter the desk's words before indexing: the accepted words for a full
    build (``build``: pass the returned list to :meth:`RulesDB.set_dictionary` once it is published),
    else the words the live index was built with. Call after ``analysis.initialize``."""
    from .store import rules_path

    db = RulesDB(rules_path(index_dir, rules_db))
    try:
        words = accepted_words(db) if build else db.dictionary()
    except (sqlite3.Error, OSError, SearchError) as exc:  # never stop a build for the desk
        log.warning("rules: cannot read the desk's dictionary words (%s); building without them", exc)
        return []
    teach_segmenter(words)
    return words


def record_build(index_dir: str | Path, words: Sequence[str], *, rules_db: str = "") -> None:
    """After a full build with ``words`` (see :func:`prepare_segmenter`) is published: they are in effect."""
    from .store import rules_path

    db = RulesDB(rules_path(index_dir, rules_db))
    if not words and not db.exists():
        return  # no desk, nothing to record
    try:
        db.set_dictionary(words)
    except (sqlite3.Error, OSError, SearchError) as exc:
        log.warning("rules: the build used %d desk words, but they could not be recorded as in effect (%s)",
                    len(words), exc)


# --------------------------------------------------------------------------- contexts


def contexts_in(texts: Iterable[str], word: str, limit: int = CONTEXTS, width: int = CONTEXT_CHARS) -> list[str]:
    """Up to ``limit`` plain-text excerpts of ``texts`` around ``word`` (matched after normalization)."""
    target = normalize(word)
    out: list[str] = []
    for text in texts:
        start = normalize(text).find(target)
        if start < 0:
            continue
        left = max(0, start - width)
        right = min(len(text), start + len(word) + width)
        excerpt = " ".join(text[left:right].split())
        out.append(("…" if left else "") + excerpt + ("…" if right < len(text) else ""))
        if len(out) >= limit:
            break
    return out


def split_of(word: str) -> list[str]:
    """How the segmenter cuts ``word`` today (precise mode)."""
    return [w for w, _, _ in SEGMENTER.spans(normalize(word), False)]


# --------------------------------------------------------------------------- proposals


_ANALYTICS_SQL = """
SELECT query,
       SUM((results = 0 AND filtered_out = 0) OR (results > 0 AND relaxed IN ('any_word', 'pinyin'))) AS unfound,
       SUM(refine) AS refined
FROM searches
WHERE ts >= ? AND channel != 'script'
  AND (refine = 1 OR (results = 0 AND filtered_out = 0) OR (results > 0 AND relaxed IN ('any_word', 'pinyin')))
GROUP BY query ORDER BY COUNT(*) DESC LIMIT ?
"""


def analytics_proposals(analytics_path: Path, days: int = 90, limit: int = ANALYTICS_PROPOSALS) -> list[dict]:
    """Evidence rows (``word``, ``source``, ``searches``, ``split``) from the analytics file."""
    if not analytics_path.is_file():
        return []
    try:
        conn = sqlite3.connect(f"file:{analytics_path}?mode=ro", uri=True, timeout=10)
        try:
            rows = conn.execute(_ANALYTICS_SQL, (time.time() - days * 86400, limit * 3)).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        if "no such table" in str(exc):
            return []
        raise AnalyticsUnavailable(f"The analytics file {analytics_path.name} cannot be read ({exc}); "
                                   "proposals from searches need it.") from None
    out = []
    for query, unfound, refined in rows:
        hint = dictionary_hint(query)
        if not hint["entry"]:
            continue
        word = query.strip()
        out.append({"word": word, "source": "analytics", "searches": int(unfound or 0) + int(refined or 0),
                    "split": hint["words"]})
        if len(out) >= limit:
            break
    return out


def corpus_proposals(texts: Sequence[str], *, min_count: int = 5, top: int = 50) -> list[dict]:
    """Evidence rows (``word``, ``source``, ``corpus``, ``contexts``, ``split``) mined from ``texts``."""
    from ..text.wordmining import mine_candidates

    candidates = mine_candidates(texts, min_count=min_count, top=top)
    return [{"word": c.word, "source": "corpus", "corpus": c.count, "contexts": contexts_in(texts, c.word),
             "split": list(c.jieba_split)} for c in candidates if _WORD.fullmatch(c.word)]


_WORD = re.compile(r"[\u3400-\u9fff\uf900-\ufaffA-Za-z0-9]{2,16}")


def refresh_from_analytics(db: RulesDB, analytics_path: Path, texts_of=None) -> int:
    """Store the analytics proposals (contexts from ``texts_of(word)`` when given); how many."""
    rows = analytics_proposals(analytics_path)
    if texts_of is not None:
        for row in rows:
            row["contexts"] = contexts_in(texts_of(row["word"]), row["word"])
    db.put_evidence(rows)
    return len(rows)


def proposals(db: RulesDB, status: str = "proposed") -> list[dict]:
    """Words of ``status`` with their evidence, most evidence first; a proposed word is one with evidence
    and no decision (a rejected word stays rejected whatever new evidence comes)."""
    decisions = {item.key: item for item in db.items("word")}
    out = []
    for word, evidence in db.evidence().items():
        item = decisions.get(word)
        current = item.value.get("status", "proposed") if item else "proposed"
        if current != status:
            continue
        if status == "proposed" and not split_known(word):
            continue
        out.append({**evidence, "status": current, "actor": item.actor if item else "",
                    "decided": item.updated if item else None})
    if status != "proposed":
        # Decided words without evidence (imported, or decided through the API) are listed too.
        for word, item in decisions.items():
            if item.value.get("status") == status and word not in {o["word"] for o in out}:
                out.append({"word": word, "sources": [], "searches": 0, "corpus": 0, "contexts": [], "split": [],
                            "status": status, "actor": item.actor, "decided": item.updated})
    out.sort(key=lambda o: (-(o["searches"] * 10 + o["corpus"]), o["word"]))
    return out


def split_known(word: str) -> bool:
    """True while the segmenter still cuts ``word`` into pieces (it is worth proposing)."""
    return len(split_of(word)) > 1
