"""Building and changing the index: rebuild, update, delete, reindex, roll back.

A rebuild writes a new generation beside the live one and only then replaces
``CURRENT``; a reader therefore never sees a half-built index, and a failed or
killed build leaves the old generation serving. Incremental writes go into the
live generation as a new commit (a new table of contents, itself atomic).
The data folder itself (generations, pointer, lock, journal) is ``store``; the segments are
written by ``backend.segments`` (builds run in workers, see ``building``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ..article import Article
from ..errors import IndexBusy, IndexUnavailable, SearchError
from . import building
from .backend import index as backend_index
from .backend.readers import ReaderPool
from .backend.segments import ChangeWriter
from .documents import analyze
from .store import (
    BUILD_INFO_FILE,
    IndexStore,
    committed_changes,
    journal_append,
    journal_since,
    publish_lock,
    truncate_journal,
)


def open_writer(folder: Path | str, *, timeout: float = 0.0, memory_mb: int = 256,
                pool: ReaderPool | None = None) -> ChangeWriter:
    """A writer of incremental changes into the generation in ``folder``, pinned to its newest
    commit; IndexBusy when another writer holds the lock for longer than ``timeout``."""
    try:
        return ChangeWriter(folder, timeout=timeout, segment_mb=building.segment_megabytes(memory_mb), pool=pool)
    except backend_index.IndexLocked as exc:
        raise IndexBusy(
            f"Another process is writing to the index (its write lock was still held after {timeout:g} s: "
            "a CLI `index` or `optimize` run, or a merge); retry when it has finished."
        ) from exc


def apply_changes(writer: ChangeWriter, changes: Iterable[tuple[str, Article | None]]) -> dict[str, bool]:
    """Apply ``(id, article)`` changes to an open writer, in order; an article of None deletes.

    Every id's documents (in the commit the writer started from) are deleted and the
    article, if any, added: analyzed here, once (a document added earlier in the same
    uncommitted writer is not seen by a delete, so the last change to an id must come
    last). Returns, for each id in the order first seen, whether it had a document in the
    committed index.
    """
    existed: dict[str, bool] = {}
    for doc_id, article in changes:
        found = bool(writer.delete_id(doc_id))
        existed[doc_id] = existed.get(doc_id, False) or found
        if article is not None:
            writer.add(analyze(article))
    return existed


def _replay(folder: Path | str, changes: dict[str, Article | None]) -> None:
    if not changes:
        return
    writer = open_writer(folder)
    try:
        apply_changes(writer, changes.items())
    except BaseException:
        writer.cancel()
        raise
    writer.commit()


def _carry_over(store: IndexStore, target: Path, since: float | None = None,
                generation: str | None = None) -> int:
    """Copy into ``target`` the live state of the ids journaled since ``since``; returns how many.

    Call with the publish lock held exclusively (no write can commit meanwhile).
    """
    live_name = store.current_name()
    if live_name is None:
        return 0
    touched = journal_since(store, since, generation)
    if not touched:
        return 0
    changes = committed_changes(store.open_current(), touched)
    _replay(target, changes)
    return len(changes)



# --------------------------------------------------------------------------- building


@dataclasses.dataclass
class BuildResult:
    """What an index run did."""

    generation: str
    indexed: int
    megabytes: float
    seconds: float
    committed: bool
    dropped: int = 0  # live articles absent from the new generation, dropped by it

    @property
    def mb_per_second(self) -> float:
        return self.megabytes / self.seconds if self.seconds else 0.0


class Progress:
    """Articles, MB/s and ETA: a tqdm bar on a terminal, periodic log lines otherwise."""

    def __init__(self, total_bytes: int | None = None, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.articles = 0
        self.bytes = 0
        self.started = time.monotonic()
        self._last_log = self.started
        self._bar = None
        if getattr(self.stream, "isatty", lambda: False)():
            from tqdm import tqdm

            self._bar = tqdm(total=total_bytes, unit="B", unit_scale=True, unit_divisor=1000,
                             file=self.stream, desc="indexing", dynamic_ncols=True)

    def update(self, article: Article) -> None:
        size = len(article.title.encode("utf-8")) + len(article.body.encode("utf-8"))
        self.articles += 1
        self.bytes += size
        if self._bar is not None:
            self._bar.update(size)
            self._bar.set_postfix(articles=self.articles, refresh=False)
            return
        now = time.monotonic()
        if now - self._last_log >= 10:
            self._last_log = now
            rate = self.bytes / 1e6 / (now - self.started)
            print(f"indexing: {self.articles} articles, {self.bytes / 1e6:.1f} MB, {rate:.2f} MB/s",
                  file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def rebuild(
    store: IndexStore,
    articles: Iterable[Article],
    *,
    procs: int = 1,
    memory_mb: int = 256,
    keep: int = 2,
    progress: Progress | None = None,
    should_commit: Callable[[], bool] = lambda: True,
    drop_missing: bool = True,
) -> BuildResult:
    """Write every article into a fresh generation and publish it.

    ``should_commit`` is asked after the last article (``--strict`` says no when
    anything was rejected): on no, or on any exception, the new generation is
    deleted and the live one is untouched. Changes committed to the live generation
    while the build ran are carried into it before it is published. With
    ``drop_missing=False``, a build that lacks articles of the live generation is
    not published (:class:`WouldDropArticles` says how many and which).
    """
    name, path = store.new_generation()
    started = time.monotonic()
    started_wall = time.time()
    count = 0
    size = 0
    try:
        backend_index.create(path)
        # Whole segments written by worker processes (see building).
        count, size = building.build(path, articles, procs=procs, segment_mb=building.segment_megabytes(memory_mb),
                                     on_article=progress.update if progress else None)
        if not should_commit():
            shutil.rmtree(path, ignore_errors=True)
            return BuildResult(name, 0, size / 1e6, time.monotonic() - started, committed=False)
        # Live articles the new generation lacks (listed before the lock: it takes a while).
        absent = _absent_ids(store, path)
        with publish_lock(store, shared=False):
            # Changes committed since the build began are carried over; a dropped article
            # rewritten meanwhile is then not missing.
            missing = sorted(set(absent) - set(journal_since(store, started_wall)))
            if missing and not drop_missing:
                raise WouldDropArticles(missing)
            path = store.finish_generation(name, path)
            _carry_over(store, path, since=started_wall)
            _write_build_info(path, count, size, time.monotonic() - started)
            store.publish(name)
            # Everything journaled so far is in the generation just published.
            truncate_journal(store)
        store.prune(keep)
        return BuildResult(name, count, size / 1e6, time.monotonic() - started, committed=True,
                           dropped=len(missing))
    except BaseException:
        if store.current_name() != name:
            shutil.rmtree(path, ignore_errors=True)
        raise
    finally:
        if progress:
            progress.close()


def _write_build_info(path: Path, count: int, size: int, seconds: float) -> None:
    info = {
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "documents": count,
        "megabytes": round(size / 1e6, 3),
        "seconds": round(seconds, 3),
    }
    (path / BUILD_INFO_FILE).write_text(json.dumps(info), encoding="utf-8")


def update(
    store: IndexStore,
    articles: Iterable[Article],
    *,
    memory_mb: int = 256,
    lock_timeout: float = 10.0,
    progress: Progress | None = None,
    should_commit: Callable[[], bool] = lambda: True,
) -> BuildResult:
    """Add or replace articles by id in the live generation (created when none exists)."""
    if store.current_name() is None:
        return rebuild(store, articles, memory_mb=memory_mb, progress=progress, should_commit=should_commit)
    started = time.monotonic()
    generation = store.current_name()
    writer = open_writer(store.live_path(), timeout=lock_timeout, memory_mb=memory_mb)
    count = size = 0
    written: dict[str, Article | None] = {}

    def upserts() -> Iterator[tuple[str, Article | None]]:
        nonlocal count, size
        for article in articles:
            yield article.id, article
            # Counted once applied (the writer asks for the next one only then).
            written[article.id] = article
            count += 1
            size += len(article.title.encode("utf-8")) + len(article.body.encode("utf-8"))
            if progress:
                progress.update(article)

    try:
        apply_changes(writer, upserts())
    except BaseException:
        writer.cancel()
        raise
    finally:
        if progress:
            progress.close()
    if not should_commit():
        writer.cancel()
        return BuildResult(store.current_name() or "", 0, size / 1e6, time.monotonic() - started, False)
    with publish_lock(store, shared=True):
        if store.current_name() != generation:
            # A rebuild was published while we were reading: write into the new one.
            writer.cancel()
            journal_append(store, written)
            _replay(store.live_path(), written)
        else:
            _journal_then_commit(store, writer, written, generation)
    return BuildResult(store.current_name() or "", count, size / 1e6, time.monotonic() - started, True)


def delete(store: IndexStore, ids: Iterable[str], *, lock_timeout: float = 10.0) -> list[str]:
    """Delete documents by id from the live generation; returns the ids that existed.

    Like :func:`update`, it checks under the publish lock that the generation it
    opened is still the live one: a delete is never committed into a generation a
    rebuild has just replaced (where it would be lost).
    """
    source = iter(ids)  # read while the writer is open, like update's articles
    requested: list[str] = []
    while True:
        generation = store.current_name()
        writer = open_writer(store.live_path(), timeout=lock_timeout, memory_mb=64)
        try:
            existed = apply_changes(writer, ((doc_id, None) for doc_id in _remember(requested, source)))
        except BaseException:
            writer.cancel()
            raise
        found = [doc_id for doc_id, was in existed.items() if was]
        with publish_lock(store, shared=True):
            if store.current_name() == generation:
                _journal_then_commit(store, writer, dict.fromkeys(found), generation)
                return found
            writer.cancel()
        # A new generation was published between opening the writer and committing: again, in it.


def _remember(requested: list[str], source: Iterator[str]) -> Iterator[str]:
    """The ids read so far, then the rest of ``source`` (remembered for a retry)."""
    yield from list(requested)
    for doc_id in source:
        requested.append(doc_id)
        yield doc_id


def _journal_then_commit(store: IndexStore, writer, changes: dict[str, Article | None], generation: str | None) -> None:
    """Journal ``changes`` (durably), then commit them; nothing is committed if the journal fails."""
    try:
        journal_append(store, changes, generation)
    except BaseException:
        writer.cancel()
        raise
    writer.commit()


def rollback(store: IndexStore) -> RollbackResult:
    """Republish the generation before the live one, with the changes made since the live one was published.

    Writes committed into the live generation after it was published (the write
    API, ``index``, ``delete``) are carried into the generation it returns to, so a
    rollback undoes a rebuild (a dictionary or analyzer change), never an
    acknowledged write. Holds the publish lock exclusively: writes wait meanwhile.
    """
    with publish_lock(store, shared=False):
        current = store.current_name()
        names = [n for n in store.generation_names() if backend_index.exists(store.generations_dir / n)]
        if current not in names or names.index(current) == 0:
            raise IndexUnavailable("No earlier generation to roll back to (see keep_generations).")
        previous = names[names.index(current) - 1]
        carried = _carry_over(store, store.generations_dir / previous, generation=current)
        store.publish(previous)
        truncate_journal(store)
    return RollbackResult(previous, current, carried)


@dataclasses.dataclass
class RollbackResult:
    """What a rollback did."""

    generation: str  # live again
    replaced: str  # the generation it replaced
    carried: int  # changes made in ``replaced`` after its publication, carried over


class WouldDropArticles(SearchError):
    """A rebuild lacks articles of the live generation and was asked not to drop them."""

    status = 409
    code = "would_drop_articles"

    def __init__(self, missing: list[str], *, built: bool = True, note: str = "") -> None:
        shown = ", ".join(missing[:5]) + (", …" if len(missing) > 5 else "")
        super().__init__(
            f"{len(missing)} live article(s) are absent from the files given ({shown}) and would be dropped; "
            "they were written through the API, `index` or an earlier build. "
            + ("Nothing was published. " if built else "Nothing was built or published. ")
            + "To rebuild from the live articles (after a dictionary or analyzer change) run `search-service "
            "reindex`; to drop them, pass --drop-missing; to keep them, add them to the files."
            + (f" {note}" if note else "")
        )
        self.missing = missing


def refuse_to_drop(store: IndexStore, ids: Iterable[str], *, note: Callable[[list[str]], str] | None = None) -> None:
    """Before a rebuild that may not drop live articles: raise :class:`WouldDropArticles` when
    live articles are absent from ``ids``, the ids of the files to build from (read without
    analysis, see ``Ingest``). The refusal then costs a read of the files, not a whole build;
    :func:`rebuild` checks again at the end, for the writes made while it ran.
    ``note(missing)``: more advice for the message (e.g. that these are the bundled samples).
    """
    if store.current_name() is None:
        return
    missing = sorted(store.live_ids() - set(ids))
    if missing:
        raise WouldDropArticles(missing, built=False, note=note(missing) if note else "")


def _absent_ids(store: IndexStore, built: Path) -> list[str]:
    """Ids live in the live generation but absent from the generation built in ``built``."""
    if store.current_name() is None:
        return []
    return sorted(store.live_ids() - backend_index.live_ids(backend_index.open_index(built)))


def reindex(
    store: IndexStore,
    *,
    procs: int = 1,
    memory_mb: int = 256,
    keep: int = 2,
    progress: Progress | None = None,
) -> BuildResult:
    """Build a new generation from the live one's own stored articles, with today's analysis, and publish it.

    For after a dictionary, analyzer or schema change: no source files are needed
    and nothing is dropped. Writes committed while it runs are carried over before
    it is published (see :func:`rebuild`); searches are served from the live
    generation throughout. Merges of the live generation wait until it is done (they
    would delete the segment files it reads).
    """
    from .merging import merge_lock

    live = store.current_path()
    if live is None:
        raise IndexUnavailable(
            f"No index in {store.root} to reindex: build one with `search-service index --rebuild PATH`.")
    with merge_lock(live, blocking=True):
        articles = store.stored_articles()
        return rebuild(store, articles, procs=procs, memory_mb=memory_mb, keep=keep, progress=progress,
                       drop_missing=False)
