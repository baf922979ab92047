"""Index generations on disk: build, publish atomically, add/replace/delete, roll back.

Layout of the data folder::

    index/
      CURRENT                 name of the live generation (replaced atomically)
      generations/g000001/    one complete Whoosh index per generation
      generations/g000002/
      .cache/                 jieba's cache (see settings.cache_dir)

A rebuild writes a new generation beside the live one and only then replaces
``CURRENT``; a reader therefore never sees a half-built index, and a failed or
killed build leaves the old generation serving. Incremental writes go into the
live generation through Whoosh's own commit (a new TOC file, itself atomic).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import json
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from whoosh import index as whoosh_index
from whoosh.codec.whoosh3 import W3Codec
from whoosh.index import LockError

from .article import Article
from .errors import IndexBusy, IndexUnavailable
from .schema import ID, build_schema, to_document

log = logging.getLogger(__name__)

CURRENT_FILE = "CURRENT"
GENERATIONS_DIR = "generations"
BUILD_INFO_FILE = "build.json"
JOURNAL_FILE = "journal.jsonl"
BUILDING_PREFIX = ".building-"
JOURNAL_MAX_BYTES = 64 * 1024 * 1024
BUILDER_PID_FILE = "builder.pid"
PUBLISH_LOCK_FILE = ".publish.lock"


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

    def open_current(self) -> whoosh_index.Index:
        """Open the live generation, or raise :class:`IndexUnavailable`."""
        path = self.current_path()
        if path is None or not whoosh_index.exists_in(str(path)):
            raise IndexUnavailable(
                f"No index in {self.root}: build one with `search-service index --rebuild PATH`."
            )
        return whoosh_index.open_dir(str(path))

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
        removed = []
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

    def rollback(self) -> str:
        """Republish the generation before the live one; returns its name."""
        current = self.current_name()
        names = [n for n in self.generation_names() if whoosh_index.exists_in(str(self.generations_dir / n))]
        if current not in names or names.index(current) == 0:
            raise IndexUnavailable("No earlier generation to roll back to (see keep_generations).")
        previous = names[names.index(current) - 1]
        self.publish(previous)
        return previous


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
# (the server's write API, CLI updates). Every incremental change is appended to a
# journal while holding the publish lock shared; a rebuild replays the changes made
# since it started into the new generation while holding it exclusively, then
# publishes. So nothing acknowledged during a rebuild is lost when it is published.


@contextlib.contextmanager
def publish_lock(store: IndexStore, *, shared: bool):
    """Shared for incremental writers, exclusive for publishing a rebuild (flock)."""
    store.root.mkdir(parents=True, exist_ok=True)
    with open(store.root / PUBLISH_LOCK_FILE, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def journal_append(store: IndexStore, changes: dict[str, Article | None]) -> None:
    """Record committed changes (article, or None for a delete) with the time."""
    if not changes:
        return
    stamp = time.time()
    lines = [
        json.dumps({"ts": stamp, "id": doc_id, "article": article.to_json() if article else None},
                   ensure_ascii=False)
        for doc_id, article in changes.items()
    ]
    path = store.root / JOURNAL_FILE
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
        size = handle.tell()
    # The journal only serves rebuilds in progress; without one, old entries are dead weight.
    if size > JOURNAL_MAX_BYTES and not any(store.generations_dir.glob(f"{BUILDING_PREFIX}*")):
        path.unlink(missing_ok=True)


def _journal_since(store: IndexStore, since: float) -> dict[str, Article | None]:
    changes: dict[str, Article | None] = {}
    try:
        handle = open(store.root / JOURNAL_FILE, encoding="utf-8")
    except FileNotFoundError:
        return changes
    with handle:
        for line in handle:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash
            if entry.get("ts", 0) >= since:
                data = entry.get("article")
                changes[entry["id"]] = _article_from_json(data) if data else None
    return changes


def _article_from_json(data: dict) -> Article:
    date = dt.date.fromisoformat(data["date"]) if data.get("date") else None
    return Article(data["id"], data["title"], data["body"], data.get("category", ""), date,
                   data.get("url", ""), data.get("source", ""))


def _replay(ix: whoosh_index.Index, changes: dict[str, Article | None]) -> None:
    writer = ix.writer(codec=codec(), compound=False)
    try:
        for doc_id, article in changes.items():
            writer.delete_by_term(ID, doc_id)
            if article is not None:
                writer.add_document(**to_document(article))
    except BaseException:
        writer.cancel()
        raise
    writer.commit()


# --------------------------------------------------------------------------- building


@dataclasses.dataclass
class BuildResult:
    """What an index run did."""

    generation: str
    indexed: int
    megabytes: float
    seconds: float
    committed: bool

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


def codec() -> W3Codec:
    """Whoosh's codec without zlib on posting blocks.

    Compressing each small posting block cost about a fifth of indexing time for a third
    less disk (1,500 news articles: 0.16 -> 0.19 MB/s, 36.5 -> 49.1 MB); reading them back
    uncompressed is cheaper too. Disk is the cheaper resource here.
    """
    return W3Codec(compression=0)


def _writer(ix: whoosh_index.Index, procs: int, memory_mb: int, timeout: float):
    try:
        if procs > 1:
            # Each process segments and writes its own segment; multisegment skips the
            # final single-threaded merge (the searcher reads several segments fine).
            return ix.writer(procs=procs, limitmb=memory_mb, multisegment=True, codec=codec(), compound=False)
        return ix.writer(limitmb=memory_mb, timeout=timeout, codec=codec(), compound=False)
    except LockError as exc:
        raise IndexBusy(
            "Another process is writing to the index (Whoosh's write lock is held); "
            "wait for it to finish and try again."
        ) from exc


def rebuild(
    store: IndexStore,
    articles: Iterable[Article],
    *,
    procs: int = 1,
    memory_mb: int = 256,
    keep: int = 2,
    progress: Progress | None = None,
    should_commit: Callable[[], bool] = lambda: True,
) -> BuildResult:
    """Write every article into a fresh generation and publish it.

    ``should_commit`` is asked after the last article (``--strict`` says no when
    anything was rejected): on no, or on any exception, the new generation is
    deleted and the live one is untouched.
    """
    name, path = store.new_generation()
    started = time.monotonic()
    started_wall = time.time()
    count = 0
    size = 0
    try:
        ix = whoosh_index.create_in(str(path), build_schema())
        writer = _writer(ix, procs, memory_mb, timeout=0)
        try:
            for article in articles:
                writer.add_document(**to_document(article))
                count += 1
                size += len(article.title.encode("utf-8")) + len(article.body.encode("utf-8"))
                if progress:
                    progress.update(article)
        except BaseException:
            writer.cancel()
            raise
        if not should_commit():
            writer.cancel()
            shutil.rmtree(path, ignore_errors=True)
            return BuildResult(name, 0, size / 1e6, time.monotonic() - started, committed=False)
        writer.commit()
        with publish_lock(store, shared=False):
            path = store.finish_generation(name, path)
            late = _journal_since(store, started_wall)
            if late:
                _replay(whoosh_index.open_dir(str(path)), late)
            _write_build_info(path, count, size, time.monotonic() - started)
            store.publish(name)
            # Everything journaled so far is in the generation just published.
            (store.root / JOURNAL_FILE).unlink(missing_ok=True)
        store.prune(keep)
        return BuildResult(name, count, size / 1e6, time.monotonic() - started, committed=True)
    except BaseException:
        if store.current_name() != name:
            shutil.rmtree(path, ignore_errors=True)
        raise
    finally:
        if progress:
            progress.close()


def _write_build_info(path: Path, count: int, size: int, seconds: float) -> None:
    info = {
        "built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
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
    ix = store.open_current()
    writer = _writer(ix, 1, memory_mb, timeout=lock_timeout)
    count = size = 0
    written: dict[str, Article | None] = {}
    try:
        for article in articles:
            writer.update_document(**to_document(article))
            written[article.id] = article
            count += 1
            size += len(article.title.encode("utf-8")) + len(article.body.encode("utf-8"))
            if progress:
                progress.update(article)
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
            _replay(store.open_current(), written)
        else:
            writer.commit()
        journal_append(store, written)
    return BuildResult(store.current_name() or "", count, size / 1e6, time.monotonic() - started, True)


def delete(store: IndexStore, ids: Iterable[str], *, lock_timeout: float = 10.0) -> list[str]:
    """Delete documents by id from the live generation; returns the ids that existed."""
    ix = store.open_current()
    writer = _writer(ix, 1, 64, timeout=lock_timeout)
    found = []
    try:
        for doc_id in ids:
            if writer.delete_by_term(ID, doc_id):
                found.append(doc_id)
    except BaseException:
        writer.cancel()
        raise
    with publish_lock(store, shared=True):
        writer.commit()
        journal_append(store, dict.fromkeys(found))
    return found


def iter_stored(ix: whoosh_index.Index) -> Iterator[dict]:
    """Every live document's stored fields (for exports and checks)."""
    with ix.searcher() as searcher:
        yield from searcher.all_stored_fields()
