"""A generation folder as Whoosh keeps it: the schema, the codec, tables of contents and the write lock.

Everything the engine asks of a generation folder besides reading commits
(:mod:`commit`) and writing segments (:mod:`segments`): whether an index is there, create one,
the segments of its newest commit, its stored documents, the write lock. The engine holds
the objects returned here (an :data:`Index`) without looking into them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TypeAlias

from whoosh import fields
from whoosh import index as whoosh_index
from whoosh.codec.whoosh3 import W3Codec
from whoosh.filedb.filestore import FileStorage
from whoosh.index import TOC, FileIndex

from .. import schema as S
from .analyzers import FirstCharacterTokenizer, PinyinTokenizer, bigram_analyzer, word_analyzer

__all__ = ["INDEX_NAME", "Index", "IndexLocked", "SegmentInfo", "codec", "commit_written", "create", "exists",
           "index_schema", "live_ids", "latest_commit", "latest_segments", "open_index", "stored_document",
           "stored_documents", "write_lock"]

INDEX_NAME = "MAIN"  # Whoosh's default index name inside a generation folder
#: What the engine holds for an open generation folder (opaque outside this package).
Index: TypeAlias = FileIndex


class IndexLocked(Exception):
    """The write lock of a generation stayed held by another writer."""


@dataclasses.dataclass(frozen=True, slots=True)
class SegmentInfo:
    """What the merge policy needs to know of a segment."""

    id: str
    doc_count: int  # documents, deleted ones included
    deleted: int

    @property
    def has_deletions(self) -> bool:
        return self.deleted > 0


def index_schema() -> fields.Schema:
    """The Whoosh schema of every generation: the engine's fields (:mod:`..schema`) as Whoosh fields."""
    words = word_analyzer()
    bigrams = bigram_analyzer()
    return fields.Schema(
        **{
            S.ID: fields.ID(stored=True, unique=True),
            # Word fields need no positions: quoted phrases are answered by the bigram
            # fields, which saves a third of the posting data.
            S.TITLE: fields.TEXT(analyzer=words, stored=True, phrase=False),
            S.BODY: fields.TEXT(analyzer=words, stored=True, phrase=False),
            S.TITLE_BIGRAMS: fields.TEXT(analyzer=bigrams, phrase=True),
            S.TITLE_PINYIN: fields.TEXT(analyzer=PinyinTokenizer(), phrase=False),
            S.BODY_BIGRAMS: fields.TEXT(analyzer=bigrams, phrase=True),
            # Documents per first character of the substring tokens (no positions, no scoring).
            S.TITLE_CHARS: fields.TEXT(analyzer=FirstCharacterTokenizer(), phrase=False),
            S.BODY_CHARS: fields.TEXT(analyzer=FirstCharacterTokenizer(), phrase=False),
            S.CATEGORY: fields.ID(stored=True, sortable=True),
            S.DAY: fields.NUMERIC(int, bits=32, stored=True, sortable=True, default=S.UNDATED),
            S.URL: fields.STORED(),
            S.SOURCE: fields.STORED(),
            S.SCRIPT_STABLE: fields.STORED(),
        }
    )


def codec() -> W3Codec:
    """Whoosh's codec without zlib on posting blocks.

    Compressing each small posting block cost about a fifth of indexing time for a third
    less disk (1,500 news articles: 0.16 -> 0.19 MB/s, 36.5 -> 49.1 MB); reading them back
    uncompressed is cheaper too. Disk is the cheaper resource here.
    """
    return W3Codec(compression=0)


def exists(folder: Path | str) -> bool:
    """Whether ``folder`` holds an index (a table of contents)."""
    return whoosh_index.exists_in(str(folder))


def create(folder: Path | str) -> None:
    """Start an empty index in ``folder`` (its first, empty commit)."""
    whoosh_index.create_in(str(folder), index_schema())


def open_index(folder: Path | str) -> Index:
    """The index in ``folder`` (reads its newest table of contents; FileNotFoundError when a
    commit replaced it meanwhile: open again)."""
    return whoosh_index.open_dir(str(folder))


def latest_commit(ix: Index) -> int:
    """The number of the newest commit of an open index."""
    return ix.latest_generation()


def commit_written(folder: Path | str, number: int) -> bool:
    """Whether commit ``number``'s table of contents is on disk in ``folder``."""
    return FileStorage(str(folder)).file_exists(TOC._filename(INDEX_NAME, number))


def latest_segments(folder: Path | str) -> list[SegmentInfo]:
    """The segments of the newest commit in ``folder``, in order."""
    toc = TOC.read(FileStorage(str(folder)), INDEX_NAME)
    return [SegmentInfo(segment.segment_id(), segment.doc_count_all(), segment.deleted_count())
            for segment in toc.segments]


def is_compound(ix: Index) -> list[bool]:
    """For each segment of the newest commit, whether it is written compound (older releases)."""
    return [segment.is_compound() for segment in ix._segments()]


@contextlib.contextmanager
def write_lock(folder: Path | str, timeout: float = 0.0) -> Iterator[None]:
    """Hold Whoosh's write lock of the index in ``folder`` (what every writer and the merge
    swap take); :class:`IndexLocked` when another holds it for longer than ``timeout``."""
    lock = acquire_write_lock(FileStorage(str(folder)), timeout)
    try:
        yield
    finally:
        lock.release()


def acquire_write_lock(storage: FileStorage, timeout: float):
    """The write lock of the index in ``storage``, acquired (release it); :class:`IndexLocked` after ``timeout``."""
    lock = storage.lock(f"{INDEX_NAME}_WRITELOCK")
    deadline = time.monotonic() + timeout
    while not lock.acquire(blocking=False):
        if time.monotonic() >= deadline:
            raise IndexLocked("the index write lock is held")
        time.sleep(0.01)
    return lock


def stored_documents(ix: Index) -> Iterator[dict]:
    """The stored fields of every live document of the newest commit, in document order."""
    with ix.searcher() as searcher:
        yield from searcher.all_stored_fields()


def stored_document(ix: Index, doc_id: str) -> dict | None:
    """The stored fields of the live document with ``doc_id`` in the newest commit, if any."""
    with ix.searcher() as searcher:
        return searcher.document(**{S.ID: doc_id})


def live_ids(ix: Index) -> set[str]:
    """The ids of the live documents of the newest commit (from the id terms, not the stored fields)."""
    ids: set[str] = set()
    with ix.reader() as reader:
        for leaf, _ in reader.leaf_readers():
            for term in leaf.lexicon(S.ID):
                text = term.decode("utf-8") if isinstance(term, bytes) else term
                # The term list keeps the ids of deleted documents until a merge; postings()
                # leaves the deleted ones out.
                if text not in ids and leaf.postings(S.ID, text).is_active():
                    ids.add(text)
    return ids
