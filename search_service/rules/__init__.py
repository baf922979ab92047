"""Staff relevance rules: pinned and hidden results per query (curations), desk synonym groups,
dictionary words, hot searches, and the history of every change (issue 28; docs/ADMIN.md).

Plain domain code (no Flask), by job:

* :mod:`.model` -- what a rule is, its bounds, the one validation (400s naming the limit);
* :mod:`.store` -- the rules file (SQLite beside the index), history and undo, jobs;
* :mod:`.edits` -- staff changes as the desk and the API make them;
* :mod:`.source` -- the rules in effect in a server process, checked per request;
* :mod:`.curations` -- pinned and hidden results applied to the engine's ranked documents;
* :mod:`.synonyms` -- desk groups (two-way and one-way) merged with the synonyms file;
* :mod:`.hot` -- the hot-search list; :mod:`.words` -- dictionary-word proposals and decisions;
* :mod:`.jobs` -- reindex and word mining in a process of their own;
* :mod:`.transfer` -- ``rules export`` / ``rules import`` (one JSON document, ``file:line`` errors).
"""

from __future__ import annotations

from .curations import Curation, Resolved, curate_docnums, curate_hits, curate_tiers
from .source import RulesSource, RulesState
from .store import RULES_FILE, RulesDB, rules_path
from .synonyms import DeskSynonymSource, DeskSynonymTable
from .transfer import ImportProblems, export_rules, import_rules

__all__ = ["RULES_FILE", "Curation", "DeskSynonymSource", "DeskSynonymTable", "ImportProblems", "Resolved",
           "RulesDB", "RulesSource", "RulesState", "curate_docnums", "curate_hits", "curate_tiers",
           "export_rules", "import_rules", "rules_path"]
