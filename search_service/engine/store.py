"""The data folder: generations, the CURRENT pointer, the publish lock, the journal and the codec.

Layout of the data folder::

    index/
      CURRENT                 name of the live generation (replaced atomically)
      generations/g000001/    one complete Whoosh index per generation
      generations/g000002/
      journal.jsonl           incremental changes since the last publication (see below)
      .publish.lock           taken shared by incremental writers, exclusively by a publication
      .cache/                 jieba's cache (see settings.cache_dir)

This module only names and guards what is on disk; building and changing the
index is ``indexer``'s job. The read side (``searcher``) depends on this module
alone.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from ..article import Article
from ..errors import IndexUnavailable, SearchError
from ..locks import file_lock
from .backend.index import Index, live_ids, open_index, stored_document, stored_documents
from .backend.index import exists as index_exists
from .schema import from_stored

T = TypeVar("T")

CURRENT_FILE = "CURRENT"
GENERATIONS_DIR = "generations"
BUILD_INFO_FILE = "build.json"
JOURNAL_FILE = "journal.jsonl"
BUILDING_PREFIX = ".building-"
BUILDER_PID_FILE = "builder.pid"
PUBLISH_LOCK_FILE = ".publish.lock"


#: How long an open keeps trying while commits and merges replace the table of contents it read.
VANISHED_FILE_PATIENCE = 2.0
# Times current_bytes() starts again when the generation it lists is replaced under it.
_COUNT_ATTEMPTS = 3


def retry_vanished(work: Callable[[], T], patience: float = VANISHED_FILE_PATIENCE) -> T:
    """``work()``, again while it raises FileNotFoundError, for up to ``patience`` seconds.

    Opening a generation lists its newest table of contents and then reads it (and the
    segment files it names); a commit or a merge of another thread or process can replace
    that table and delete its files in between. The next attempt reads the newer one. The
    pauses grow from nothing to 20 ms so a writer committing in a tight loop (whose commits
    take a few ms each) lets an attempt through; a file missing for longer than
    ``patience`` is really missing and the error propagates.
    """
    deadline = time.monotonic() + patience
    pause = 0.0
    while True:
        try:
            return work()
        except FileNotFoundError:
            if time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(0.02, pause * 2 or 0.0005)


class IndexStore:
    """The data folder and its generations. Cheap to create; holds no open files."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.generations_dir = self.root / GENERATIONS_DIR

    # -- reading the pointer ------------------------------------------------------------

    def current_name(self) -> str | None:
        """Name of the live generation, or None when nothing was ever published."""
        try:
            name = (self.root / CURRENT_FILE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name or None

    def current_path(self) -> Path | None:
        """Folder of the live generation, or None."""
        name = self.current_name()
        return self.generations_dir / name if name else None

    def current_bytes(self) -> int:
        """Bytes of the live generation's files; 0 without an index.

        The files change under the count: a commit or merge removes a segment's files between
        the listing and their ``stat``, and a rebuild may publish another generation and remove
        this one. A file gone meanwhile is not counted (it is no longer part of the index); a
        folder gone is counted again from the generation now live.
        """
        for _ in range(_COUNT_ATTEMPTS):
            path = self.current_path()
            if path is None:
                return 0
            try:
                names = os.listdir(path)
            except FileNotFoundError:
                continue
            total = 0
            for name in names:
                try:
                    found = os.stat(path / name)
                except FileNotFoundError:
                    continue
                if stat.S_ISREG(found.st_mode):
                    total += found.st_size
            return total
        return 0

    def live_path(self) -> Path:
        """Folder of the live generation, or :class:`IndexUnavailable`."""
        path = self.current_path()
        if path is None:
            raise IndexUnavailable(f"No index in {self.root}: build one with `search-service index --rebuild PATH`.")
        return path

    def open_current(self) -> Index:
        """Open the live generation, or raise :class:`IndexUnavailable`."""
        # Opening reads the newest table of contents, which a commit may replace meanwhile
        # (and a publish may move CURRENT): each attempt starts from CURRENT again.
        return retry_vanished(self._open_current_once)

    def _open_current_once(self) -> Index:
        path = self.current_path()
        if path is None or not index_exists(path):
            raise IndexUnavailable(f"No index in {self.root}: build one with `search-service index --rebuild PATH`.")
        return open_index(path)

    def live_ids(self) -> set[str]:
        """The ids of the live generation's articles (none without an index)."""
        if self.current_name() is None:
            return set()
        return live_ids(self.open_current())

    def stored_articles(self) -> Iterator[Article]:
        """Every live article of the live generation, as stored, in document order."""
        return (from_stored(stored) for stored in stored_documents(self.open_current()))

    def stored_article(self, doc_id: str) -> Article | None:
        """The live generation's article ``doc_id`` as stored, if any."""
        if self.current_name() is None:
            return None
        stored = stored_document(self.open_current(), doc_id)
        return from_stored(stored) if stored else None

    def generation_names(self) -> list[str]:
        """Every generation folder on disk, oldest first."""
        if not self.generations_dir.is_dir():
            return []
        return sorted(p.name for p in self.generations_dir.iterdir()
                      if p.is_dir() and re.fullmatch(r"g\d{6}", p.name))

    def build_info(self, name: str | None = None) -> dict:
        """What was recorded when a generation was built (time, counts)."""
        name = name or self.current_name()
        if not name:
            return {}
        try:
            return json.loads((self.generations_dir / name / BUILD_INFO_FILE).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}

    # -- writing the pointer ------------------------------------------------------------

    def new_generation(self) -> tuple[str, Path]:
        """Reserve the next generation name and create its *building* folder.

        A generation is built in ``generations/.building-<name>`` and renamed to
        ``generations/<name>`` only when complete, so a killed build never leaves
        something that looks like a generation (to ``rollback`` or ``prune``).
        """
        self.generations_dir.mkdir(parents=True, exist_ok=True)
        self.remove_abandoned_builds()
        taken = [p.name.removeprefix(BUILDING_PREFIX) for p in self.generations_dir.iterdir()]
        numbers = [int(n[1:]) for n in taken if re.fullmatch(r"g\d{6}", n)]
        number = max(numbers, default=0) + 1
        while True:
            name = f"g{number:06d}"
            path = self.generations_dir / f"{BUILDING_PREFIX}{name}"
            try:
                path.mkdir()  # atomic: a concurrent build cannot take the same number
            except FileExistsError:
                number += 1
                continue
            if (self.generations_dir / name).exists():
                path.rmdir()
                number += 1
                continue
            (path / BUILDER_PID_FILE).write_text(str(os.getpid()), encoding="utf-8")
            return name, path

    def finish_generation(self, name: str, building: Path) -> Path:
        """Rename a completed build to its generation folder; returns the new path."""
        final = self.generations_dir / name
        (building / BUILDER_PID_FILE).unlink(missing_ok=True)
        os.replace(building, final)
        _fsync_dir(self.generations_dir)
        return final

    def remove_abandoned_builds(self) -> list[str]:
        """Delete building folders whose builder process is gone (killed mid-build)."""
        removed: list[str] = []
        if not self.generations_dir.is_dir():
            return removed
        for path in self.generations_dir.glob(f"{BUILDING_PREFIX}*"):
            try:
                pid = int((path / BUILDER_PID_FILE).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                pid = 0
            if pid and _process_alive(pid):
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
        return removed

    def publish(self, name: str) -> None:
        """Make ``name`` the live generation: write a temp file, fsync, rename over CURRENT."""
        if not (self.generations_dir / name).is_dir():
            raise IndexUnavailable(f"Generation {name} does not exist in {self.generations_dir}.")
        tmp = self.root / f".{CURRENT_FILE}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(name + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.root / CURRENT_FILE)
        _fsync_dir(self.root)

    def prune(self, keep: int) -> list[str]:
        """Delete all but the newest ``keep`` generations (never the live one)."""
        current = self.current_name()
        names = self.generation_names()
        removed = []
        for name in names[: max(0, len(names) - keep)]:
            if name != current:
                shutil.rmtree(self.generations_dir / name, ignore_errors=True)
                removed.append(name)
        return removed




def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(path: Path) -> None:
    # Make the rename itself durable; not every platform can open a directory.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

# --------------------------------------------------------------------------- journal
#
# A rebuild reads its source files while the live generation may still take writes
# (the server's write API, CLI updates and deletes). Every incremental change is
# journaled *before* its commit, fsync'd, while holding the publish lock shared; a
# rebuild (or reindex, or a rollback) then carries the changes made since it started
# into the generation it publishes, holding the lock exclusively.
#
# The journal names the ids a write touched and a digest of the state it gave each
# one (None for a delete); it never decides the content. What is carried over is
# each touched id's state *in the live generation*, and only when that state is one
# the journal recorded for it: a journaled write whose commit then failed left the
# live state unchanged, so it is not carried over, and a committed write is carried
# over even if everything after its commit failed. The journal and the index
# therefore cannot disagree about what was written.


class JournalError(SearchError):
    """The journal could not be written; the change was not committed."""

    status = 503
    code = "write_failed"

    def __init__(self, path: Path, error: OSError) -> None:
        self.strerror = error.strerror or str(error)
        super().__init__(f"Could not append to the journal {path} ({self.strerror}); nothing was written. "
                         "Check free disk space and the folder's permissions, then retry.")


@contextlib.contextmanager
def publish_lock(store: IndexStore, *, shared: bool) -> Iterator[None]:
    """Shared for incremental writers, exclusive for publishing a rebuild (flock)."""
    store.root.mkdir(parents=True, exist_ok=True)
    with file_lock(store.root / PUBLISH_LOCK_FILE, shared=shared):
        yield


def article_digest(article: Article | None) -> str | None:
    """A digest of an article's stored state (None for absent), as journaled and compared."""
    if article is None:
        return None
    # ensure_ascii: any str (even one with a lone surrogate) has an ASCII encoding.
    text = json.dumps(article.to_json(), ensure_ascii=True, sort_keys=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:32]


def journal_append(store: IndexStore, changes: dict[str, Article | None], generation: str | None = None) -> None:
    """Record changes about to be committed (article, or None for a delete), durably.

    Call it before the commit, with the publish lock held shared. Raises
    :class:`JournalError` when the journal cannot be written: the caller must then
    not commit.
    """
    if not changes:
        return
    stamp = time.time()
    generation = generation or store.current_name()
    data = "".join(
        json.dumps({"ts": stamp, "gen": generation, "id": doc_id, "state": article_digest(article)},
                   ensure_ascii=True) + "\n"
        for doc_id, article in changes.items()
    ).encode("ascii")
    path = store.root / JOURNAL_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            # A crash or a full disk can leave the last line cut short: start on a new line,
            # or this entry would be glued to it and unreadable (the cut one is skipped).
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise JournalError(path, exc) from exc


def _journal_entries(store: IndexStore) -> Iterator[dict]:
    try:
        handle = open(store.root / JOURNAL_FILE, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    with handle:
        for line in handle:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash or a full disk
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                continue
            if "article" in entry:  # written by an earlier version: the article itself
                data = entry["article"]
                entry["state"] = article_digest(_article_from_json(data)) if data else None
            yield entry


def journal_since(store: IndexStore, since: float | None = None,
                   generation: str | None = None) -> dict[str, set[str | None]]:
    """Every id journaled since ``since`` (and/or into ``generation``), with the states recorded."""
    touched: dict[str, set[str | None]] = {}
    for entry in _journal_entries(store):
        if since is not None and entry.get("ts", 0) < since:
            continue
        if generation is not None and entry.get("gen") not in (generation, None):
            continue
        touched.setdefault(entry["id"], set()).add(entry.get("state"))
    return touched


def _article_from_json(data: dict) -> Article:
    date = dt.date.fromisoformat(data["date"]) if data.get("date") else None
    return Article(data["id"], data["title"], data["body"], data.get("category", ""), date,
                   data.get("url", ""), data.get("source", ""))


def committed_changes(live: Index, touched: dict[str, set[str | None]]) -> dict[str, Article | None]:
    """The live state of every journaled id whose live state is one the journal recorded.

    An id whose every journaled write failed still has its earlier state, which the
    journal did not record: it is left out.
    """
    changes: dict[str, Article | None] = {}
    for doc_id, states in touched.items():
        stored = stored_document(live, doc_id)
        article = from_stored(stored) if stored else None
        if article_digest(article) in states:
            changes[doc_id] = article
    return changes


def truncate_journal(store: IndexStore) -> None:
    """Drop the journal once it is all in the published generation, unless another build needs it."""
    if not any(store.generations_dir.glob(f"{BUILDING_PREFIX}*")):
        (store.root / JOURNAL_FILE).unlink(missing_ok=True)
