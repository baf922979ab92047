"""Writing Whoosh segments fast: full builds, and the incremental changes of every writer.

Whoosh's own writer costs one Python call per posting three times over (the analyzer's
token objects, the posting pool and its sorted runs, ``W3PostingsWriter.add_posting``),
which made a rebuild twice as slow as the segmenter. Here each article's text is
normalized once and segmented once per jieba mode (the title's search-mode segmentation
serves its word field and its pinyin field); the tokens of a segment's documents are
gathered per field and term in compact arrays, and the segment is written through
Whoosh's codec classes (``W3PerDocWriter`` for stored fields, lengths and columns,
``W3FieldWriter``'s term table and postings file), with the posting blocks encoded here a
block at a time.

The result is an ordinary Whoosh 3 segment, non-compound (readers can mmap each file):

* every block is what ``W3LeafMatcher`` reads: a pickled ``(ids, weights, values)`` tuple
  after a pickled info tuple. The pickles are written without a protocol header and
  without memo entries (plain opcodes any ``pickle.loads`` reads), ids as delta-coded
  small ints, weights as ints (term frequencies; Whoosh's writer uses 9-byte floats and
  pickles each value bytes object through ``_codecs.encode``);
* a term found in one document only has its posting inlined in the term table
  (``W3TermInfo`` inlined postings, read through a ``ListMatcher``): most bigram terms
  are such, and a separate block cost them about 40 bytes more;
* a position value is ``Positions.encode``'s layout: a 4-byte count and a pickled tuple
  of position deltas (``Positions.decode_positions`` reads it).

:class:`ChangeWriter` commits incremental changes (the server's writes, ``index``,
``delete``) through the same builder. :func:`build` runs the analysis in ``procs``
worker processes that each write whole segments; the parent only reads articles and writes the table of contents. Every
segment's documents are consecutive articles of one worker; the index is multi-segment
(searchers read all segments).
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import multiprocessing
import os
import queue
import struct
import time
import traceback
from array import array
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from whoosh import fields
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3Codec, W3TermInfo
from whoosh.filedb.filestore import FileStorage
from whoosh.index import TOC, LockError, clean_files
from whoosh.system import pack_ushort
from whoosh.util.numeric import length_to_byte

from ..article import Article
from ..text.analysis import SEGMENTER, bigram_positions, normalize, words_of_segments
from ..text.pinyin import pinyin_of_segments
from . import schema as S

INDEX_NAME = "MAIN"  # whoosh.index._DEF_INDEX_NAME
BLOCK_LIMIT = 128    # postings per block, as W3Codec's default
#: Articles per batch handed to a worker process.
BATCH_ARTICLES = 64

# --------------------------------------------------------------------------- pickle opcodes
#
# Hand-written pickle streams: what pickle.loads reads, without pickle.dumps' protocol
# header, framing and memo (pickle.dumps(..., 2) would write each bytes value as a
# _codecs.encode call, about 20 bytes of overhead per posting).

_MARK, _TUPLE, _TUPLE1, _TUPLE2, _TUPLE3, _NONE, _STOP = b"(", b"t", b"\x85", b"\x86", b"\x87", b"N", b"."
_TUPLE_N = {1: _TUPLE1, 2: _TUPLE2, 3: _TUPLE3}
_SMALL = 65536
# The opcode of every int below _SMALL: K (one byte) or M (two bytes, little-endian).
_INT_OP = [b"K" + bytes((i,)) if i < 256 else b"M" + struct.pack("<H", i) for i in range(_SMALL)]
_pack_i4 = struct.Struct("<i").pack
_pack_u4_be = struct.Struct(">I").pack
_pack_int_be = struct.Struct(">i").pack
_COUNT = [_pack_u4_be(i) for i in range(1024)]
_FLOAT_OP = [b"G" + struct.pack(">d", float(i)) for i in range(1024)]
_LENGTHS = struct.Struct("!ii")  # whoosh.filedb.filetables._lengths
_TERMINFO = W3TermInfo._struct.pack
_EXTENT = struct.Struct(">qi").pack  # pack_long(offset) + pack_int(length), as W3TermInfo.to_bytes


def _int_op(value: int) -> bytes:
    if 0 <= value < _SMALL:
        return _INT_OP[value]
    return b"J" + _pack_i4(value)


def _int_tuple(values) -> bytes:
    """A pickled tuple of non-negative ints."""
    ops = [_INT_OP[v] if v < _SMALL else _int_op(v) for v in values]
    n = len(ops)
    if n in _TUPLE_N:
        return b"".join(ops) + _TUPLE_N[n]
    return _MARK + b"".join(ops) + _TUPLE


def _bytes_op(value: bytes) -> bytes:
    n = len(value)
    if n < 256:
        return b"C" + bytes((n,)) + value
    return b"B" + _pack_i4(n) + value


def encode_positions(positions) -> bytes:
    """``Positions.encode(positions)`` in the compact pickle layout (same decoded value)."""
    n = len(positions)
    if n == 1:
        return _COUNT[1] + _int_op(positions[0]) + _TUPLE1
    deltas = [positions[0]]
    deltas += [b - a for a, b in zip(positions, positions[1:])]
    return (_COUNT[n] if n < 1024 else _pack_u4_be(n)) + _int_tuple(deltas)


# --------------------------------------------------------------------------- analysis


def analyze(article: Article) -> dict[str, list[str] | dict[str, int | list[int]]]:
    """The tokens of an article's text fields, each text segmented once per jieba mode.

    Word and pinyin fields: the token texts (counted later); bigram fields: token ->
    position (or positions, when repeated). Identical to what the schema's analyzers
    give for the same text.
    """
    title = normalize(article.title)
    body = normalize(article.body)
    title_segments = list(SEGMENTER.spans(title, True)) if title else []
    return {
        S.TITLE: [w for w, _, _ in words_of_segments(title_segments)],
        S.BODY: [w for w, _, _ in words_of_segments(SEGMENTER.spans(body, True))] if body else [],
        S.TITLE_PINYIN: [w for w, _, _ in pinyin_of_segments(title_segments)],
        S.TITLE_BIGRAMS: bigram_positions(title),
        S.BODY_BIGRAMS: bigram_positions(body),
    }


def _encode_position_value(positions: int | list[int]) -> bytes:
    return encode_positions((positions,) if positions.__class__ is int else positions)


@functools.cache
def _one_position_table() -> list[bytes]:
    """``encode_positions((p,))`` for every p below _SMALL (most postings of a bigram field)."""
    return [_COUNT[1] + op + _TUPLE1 for op in _INT_OP]


# --------------------------------------------------------------------------- one segment


class _FieldPostings:
    """A field's postings in a segment, flat and in arrival order (documents ascending).

    One entry per (term, document): the term's number (in order of first sight), the
    document, its frequency and, for fields with positions, the encoded positions.
    Appending whole documents to flat arrays costs far less than a container per term
    (most bigram terms of a segment are new, and seen once); :meth:`in_term_order` sorts
    once at the end.
    """

    __slots__ = ("terms", "term_numbers", "docs", "freqs", "values")

    def __init__(self, with_positions: bool) -> None:
        self.terms: dict[str | bytes, int] = {}
        self.term_numbers = array("I")
        self.docs = array("I")
        self.freqs = array("I")
        self.values: list[bytes] | None = [] if with_positions else None

    def __bool__(self) -> bool:
        return bool(self.terms)

    def add_document(self, docnum: int, terms: Iterable[str | bytes], freqs: list[int],
                     values: list[bytes] | None = None) -> None:
        """Append one document's postings: ``terms`` in any order, each once, with ``freqs`` (and ``values``)."""
        known = self.terms
        number = known.setdefault
        # len(known) is evaluated before setdefault adds the term: a new term gets the next number.
        numbers = [number(term, len(known)) for term in terms]
        self.term_numbers.extend(numbers)
        self.docs.extend(array("I", (docnum,)) * len(numbers))
        self.freqs.extend(freqs)
        if values is not None:
            self.values.extend(values)  # type: ignore[union-attr]

    def in_term_order(self) -> tuple[list[bytes], list[int], array, array, list[bytes] | None]:
        """The postings sorted by term bytes (documents ascending within a term).

        Returns the sorted term bytes, each term's first entry (and a final end), and
        the documents, frequencies and values in that order.
        """
        encoded = [t if isinstance(t, bytes) else t.encode("utf-8") for t in self.terms]
        ranked = sorted(range(len(encoded)), key=encoded.__getitem__)
        rank = np.empty(len(encoded), dtype=np.uint32)
        rank[ranked] = np.arange(len(encoded), dtype=np.uint32)
        keys = rank[np.frombuffer(self.term_numbers, dtype=np.uint32)]
        order = np.argsort(keys, kind="stable")  # stable: documents stay ascending
        bounds = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys, minlength=len(encoded)), out=bounds[1:])
        docs = array("I", np.frombuffer(self.docs, dtype=np.uint32)[order].tobytes())
        freqs = array("I", np.frombuffer(self.freqs, dtype=np.uint32)[order].tobytes())
        values = None
        if self.values is not None:
            unsorted = self.values
            values = [unsorted[i] for i in order.tolist()]
        return [encoded[i] for i in ranked], bounds.tolist(), docs, freqs, values


class SegmentBuilder:
    """Gathers documents and writes them as one new segment of the index in ``storage``."""

    def __init__(self, storage: FileStorage, schema: fields.Schema, codec: W3Codec) -> None:
        self.storage = storage
        self.schema = schema
        self.codec = codec
        self.segment = codec.new_segment(storage, INDEX_NAME)
        self.perdoc = codec.per_document_writer(storage, self.segment)
        self.doc_count = 0
        self.text_bytes = 0
        self._text_fields = (S.TITLE, S.BODY, S.TITLE_PINYIN, S.TITLE_BIGRAMS, S.BODY_BIGRAMS)
        self._postings: dict[str, _FieldPostings] = {
            name: _FieldPostings(schema[name].format.supports("positions"))
            for name in schema.names() if schema[name].indexed}
        # Length bytes (length_to_byte) per field and document, for block and term statistics.
        self._length_bytes: dict[str, array] = {name: array("B") for name in self._postings}
        self._stored_fields = sorted(name for name in schema.names() if not name.startswith("_"))
        self._one_position = _one_position_table()

    def add(self, article: Article) -> None:
        """Add one article as the next document."""
        self.add_analyzed(article, analyze(article))

    def add_analyzed(self, article: Article, tokens: dict) -> None:
        docnum = self.doc_count
        document = S.to_document(article)
        schema = self.schema
        perdoc = self.perdoc
        perdoc.start_doc(docnum)
        for name in self._stored_fields:
            value = document.get(name)
            field = schema[name]
            length = 0
            if value is not None and field.indexed:
                if name in tokens:
                    length = self._add_tokens(name, docnum, tokens[name])
                else:
                    length = self._add_items(name, field, docnum, value)
            if name in self._length_bytes:
                self._length_bytes[name].append(length_to_byte(length) if length else 0)
            if value is None:
                continue
            perdoc.add_field(name, field, value if field.stored else None, length)
            column = field.column_type
            if column:
                perdoc.add_column_value(name, column, field.to_column_value(value))
        perdoc.finish_doc()
        self.doc_count += 1
        self.text_bytes += len(article.title.encode("utf-8")) + len(article.body.encode("utf-8"))

    def _add_tokens(self, name: str, docnum: int, tokens) -> int:
        postings = self._postings[name]
        if isinstance(tokens, dict):  # token -> position(s)
            if postings.values is None:
                raise ValueError(f"field {name!r}: a term indexed without positions got positions")
            one_position = self._one_position
            found = tokens.values()
            freqs = [1 if p.__class__ is int else len(p) for p in found]
            values = [one_position[p] if p.__class__ is int and p < _SMALL else _encode_position_value(p)
                      for p in found]
            postings.add_document(docnum, tokens, freqs, values)
            return sum(freqs)
        counts = Counter(tokens)
        postings.add_document(docnum, counts, list(counts.values()))
        return len(tokens)

    def _add_items(self, name: str, field, docnum: int, value) -> int:
        # Non-text fields (id, category, day): a few terms per document, Whoosh's own terms.
        items = list(field.index(value))
        self._postings[name].add_document(docnum, [tbytes for tbytes, _, _, _ in items],
                                          [freq for _, freq, _, _ in items])
        return sum(freq for _, freq, _, _ in items) if field.scorable else 0

    def cancel(self) -> None:
        """Close and delete the temporary column file (the build failed; the folder is deleted)."""
        columns = self.perdoc._cols
        try:
            columns._temp.close()
            columns._tempstorage.delete_file(columns._tempname)
        except OSError:
            pass

    # -- writing -----------------------------------------------------------------------------

    def finish(self):
        """Write the segment's files; returns the Whoosh segment object (for the TOC)."""
        self.perdoc.close()
        fieldwriter = self.codec.field_writer(self.storage, self.segment)
        for name in sorted(self._postings):
            postings = self._postings[name]
            if not postings:
                continue
            field = self.schema[name]
            fieldwriter.start_field(name, field)
            self._write_field(fieldwriter, name, field, postings)
            fieldwriter.finish_field()
        fieldwriter.close()
        self.segment.set_doc_count(self.doc_count)
        self._postings.clear()
        return self.segment

    def _write_field(self, fieldwriter, name: str, field, postings: _FieldPostings) -> None:
        postfile = fieldwriter._postfile
        prefix = pack_ushort(fieldwriter._fieldid)
        lengths = self._length_bytes[name] if field.scorable else None
        fixed = field.format.fixed_value_size()  # None: positions; 0: none; 4: frequency
        terms, bounds, all_docs, all_freqs, all_values = postings.in_term_order()
        buffer = bytearray()
        base = postfile.tell()
        table = []
        for index, btext in enumerate(terms):
            start, end = bounds[index], bounds[index + 1]
            n = end - start
            if n == 1:
                # Inlined in the term table, as W3TermInfo.set_inlined: no posting block.
                doc, freq = all_docs[start], all_freqs[start]
                length = lengths[doc] if lengths is not None else 0
                if fixed is None:
                    value = _bytes_op(all_values[start]) + _TUPLE1  # type: ignore[index]
                elif fixed == 0:
                    # (b"",): Whoosh's ListMatcher answers "" (a str) for missing inlined values,
                    # which its own merge (PostingPool.add) refuses; Existence encodes b"".
                    value = _bytes_op(b"") + _TUPLE1
                else:
                    value = _bytes_op(_COUNT[freq] if freq < 1024 else _pack_u4_be(freq)) + _TUPLE1
                table.append((prefix + btext,
                              _TERMINFO(1, float(freq), 1, length, length, float(freq), doc, doc)
                              + _int_op(doc) + _TUPLE1 + _int_op(freq) + _TUPLE1 + value + _TUPLE3 + _STOP))
                continue
            docs, freqs = all_docs[start:end], all_freqs[start:end]
            values = all_values[start:end] if all_values is not None else None
            first_byte = base + len(buffer)
            buffer += WHOOSH3_HEADER_MAGIC
            total = maxweight = maxlen = 0
            minlen = 255
            for first in range(0, n, BLOCK_LIMIT):
                last = first + BLOCK_LIMIT
                if last > n:
                    last = n
                count = last - first
                if count == 1:
                    doc = docs[first]
                    bmaxw = freqs[first]
                    bmin = bmax = lengths[doc] if lengths is not None else 0
                    ids = (_INT_OP[doc] if doc < _SMALL else _int_op(doc)) + _TUPLE1
                    weights = _NONE if bmaxw == 1 else _int_op(bmaxw) + _TUPLE1
                    total += bmaxw
                else:
                    block_docs = docs[first:last]
                    block_freqs = freqs[first:last]
                    if lengths is not None:
                        block_lens = [lengths[d] for d in block_docs]
                        bmin, bmax = min(block_lens), max(block_lens)
                    else:
                        bmin = bmax = 0
                    bmaxw = max(block_freqs)
                    total += sum(block_freqs)
                    ids = _int_tuple([block_docs[0]] + [b - a for a, b in zip(block_docs, block_docs[1:])])
                    weights = _NONE if bmaxw == 1 else _int_tuple(block_freqs)
                if bmaxw > maxweight:
                    maxweight = bmaxw
                if bmin < minlen:
                    minlen = bmin
                if bmax > maxlen:
                    maxlen = bmax
                if fixed is None:
                    block_values = _bytes_tuple(values[first:last])  # type: ignore[index]
                elif fixed == 0:
                    block_values = _NONE
                else:
                    block_values = _bytes_op(b"".join([_COUNT[f] if f < 1024 else _pack_u4_be(f)
                                                       for f in freqs[first:last]]))
                data = ids + weights + block_values + _TUPLE3 + _STOP
                info = _block_info(count, docs[last - 1], bmaxw, bmin, bmax)
                size = len(info) + len(data)
                buffer += _pack_int_be(-size if last == n else size)
                buffer += info
                buffer += data
            table.append((prefix + btext,
                          _TERMINFO(0, float(total), n, minlen if lengths is not None else 0, maxlen,
                                    float(maxweight), docs[0], docs[-1])
                          + _EXTENT(first_byte, base + len(buffer) - first_byte)))
            if len(buffer) > 1 << 20:
                postfile.write(bytes(buffer))
                base += len(buffer)
                buffer.clear()
        postfile.write(bytes(buffer))
        _add_terms(fieldwriter._tindex, table)


def _add_terms(tindex, table: list[tuple[bytes, bytes]]) -> None:
    """``OrderedHashWriter.add`` for every (key, value) of ``table``, in one write."""
    if not table:
        return
    if table[0][0] <= tindex.lastkey:
        raise ValueError(f"Keys must increase: {tindex.lastkey!r}..{table[0][0]!r}")
    dbfile = tindex.dbfile
    base = dbfile.tell()
    buffer = bytearray()
    hashfn = tindex.hashfn
    buckets = tindex.buckets
    index = tindex.index
    pack = _LENGTHS.pack
    for key, value in table:
        pos = base + len(buffer)
        buffer += pack(len(key), len(value))
        buffer += key
        buffer += value
        h = hashfn(key)
        buckets[h & 255].append((h, pos))
        index.append(pos)
    dbfile.write(bytes(buffer))
    tindex.lastkey = table[-1][0]


def _bytes_tuple(values: list[bytes]) -> bytes:
    ops = b"".join([_bytes_op(v) for v in values])
    n = len(values)
    return ops + _TUPLE_N[n] if n in _TUPLE_N else _MARK + ops + _TUPLE


def _block_info(count: int, last_id: int, max_weight: int, min_len: int, max_len: int) -> bytes:
    # W3PostingsWriter: dumps((count, last id, max weight, compression, min length byte,
    # max length byte), 2); any pickle of that tuple reads the same.
    return b"".join((_MARK, _INT_OP[count], _INT_OP[last_id] if last_id < _SMALL else _int_op(last_id),
                     _FLOAT_OP[max_weight] if max_weight < 1024 else b"G" + struct.pack(">d", max_weight),
                     b"K\x00", _INT_OP[min_len], _INT_OP[max_len], _TUPLE, _STOP))


# --------------------------------------------------------------------------- incremental changes


class ChangeWriter:
    """Changes to a live index in one commit: deletions marked in its segments, additions as new segments.

    The incremental counterpart of :func:`build`: added articles go through the same
    :class:`SegmentBuilder` (a commit of ten short articles through Whoosh's own writer
    cost ~450 ms, most of it per-term Python in its posting pool and codec); deletions
    are marked in the existing segments, as Whoosh's ``SegmentWriter.delete_document``
    does, and :meth:`commit` writes the new table of contents like its commit. Holds
    Whoosh's write lock from construction to :meth:`commit` or :meth:`cancel`, so it
    excludes Whoosh writers (the CLI, merges) and they exclude it.
    """

    def __init__(self, ix, *, timeout: float = 0.0, codec: W3Codec, segment_mb: float = 32.0) -> None:
        lock = ix.lock("WRITELOCK")
        deadline = time.monotonic() + timeout
        while not lock.acquire(blocking=False):
            if time.monotonic() >= deadline:
                raise LockError("the index write lock is held")
            time.sleep(0.01)
        self.writelock = lock
        self.is_closed = False
        try:
            toc = TOC.read(ix.storage, ix.indexname)
        except BaseException:
            lock.release()
            raise
        self._ix = ix
        self.storage = ix.storage
        self.indexname = ix.indexname
        self.schema = toc.schema
        self.codec = codec
        self.generation = toc.generation + 1
        self.segments = list(toc.segments)
        self._offsets = [0]
        for segment in self.segments:
            self._offsets.append(self._offsets[-1] + segment.doc_count_all())
        self._segment_limit = segment_mb * 1e6
        self._builder: SegmentBuilder | None = None
        self._added: list = []  # finished new segments
        self._searcher: Any = None  # a whoosh Searcher, opened by the first delete_by_term
        self.deleted = 0

    # -- the changes ----------------------------------------------------------------------

    def delete_document(self, docnum: int) -> None:
        """Mark a document (number over the whole index, as a searcher of this commit gives it) deleted."""
        if not 0 <= docnum < self._offsets[-1]:
            raise ValueError(f"no document number {docnum} in this commit ({self._offsets[-1]} documents)")
        index = bisect.bisect_right(self._offsets, docnum) - 1
        self.segments[index].delete_document(docnum - self._offsets[index])
        self.deleted += 1

    def delete_by_term(self, fieldname: str, text: str) -> int:
        """Delete the live documents of this commit with ``text`` in ``fieldname``; returns how many."""
        if self._searcher is None:
            # One searcher for the writer's life: the write lock keeps the commit it reads current.
            self._searcher = self._ix.searcher()
        docnums = list(self._searcher.document_numbers(**{fieldname: text}))
        for docnum in docnums:
            self.delete_document(docnum)
        return len(docnums)

    def add_article(self, article: Article) -> None:
        """Add an article as a new document (in a new segment of this commit)."""
        if self._builder is None:
            self._builder = SegmentBuilder(self.storage, self.schema, self.codec)
        self._builder.add(article)
        if self._builder.text_bytes >= self._segment_limit:
            self._added.append(self._builder.finish())
            self._builder = None

    # -- the end --------------------------------------------------------------------------

    def commit(self) -> int:
        """Write the new segments and the table of contents; returns the commit (TOC generation) number."""
        if self.is_closed:
            raise RuntimeError("this writer was already committed or cancelled")
        try:
            if self._builder is not None:
                builder, self._builder = self._builder, None
                if builder.doc_count:
                    self._added.append(builder.finish())
                else:
                    builder.cancel()
            final = self.segments + self._added
            TOC(self.schema, final, self.generation).write(self.storage, self.indexname)
        except BaseException:
            self.cancel()
            raise
        try:
            clean_files(self.storage, self.indexname, self.generation, final)
        finally:
            self._release()
        return self.generation

    def cancel(self) -> None:
        """Give up: the files of new segments are deleted and the write lock released; never raises."""
        if self.is_closed:
            return
        try:
            if self._builder is not None:
                self._builder.cancel()
                self._added.append(self._builder.segment)
                self._builder = None
            for segment in self._added:
                prefix = segment.segment_id()
                for name in list(self.storage):
                    if name.startswith(prefix):
                        with contextlib.suppress(OSError):
                            self.storage.delete_file(name)
        except Exception:  # noqa: BLE001 - a failing disk must not keep the lock held
            pass
        finally:
            self._release()

    def _release(self) -> None:
        self.is_closed = True
        if self._searcher is not None:
            with contextlib.suppress(Exception):
                self._searcher.close()
            self._searcher = None
        _remove_empty_temp_folder(self.storage)
        with contextlib.suppress(Exception):
            self.writelock.release()


def _remove_empty_temp_folder(storage: FileStorage) -> None:
    """Remove the column writers' temporary folder once no builder uses it (it is empty then)."""
    with contextlib.suppress(OSError):
        os.rmdir(os.path.join(storage.folder, f"{INDEX_NAME}.tmp"))


# --------------------------------------------------------------------------- whole builds


class BuildFailed(RuntimeError):
    """A worker process failed; the message carries its traceback."""


def build(
    index_dir: Path | str,
    schema: fields.Schema,
    articles: Iterable[Article],
    *,
    codec: W3Codec,
    procs: int = 1,
    segment_mb: float = 32.0,
    on_article: Callable[[Article], None] | None = None,
) -> tuple[int, int]:
    """Write ``articles`` as the segments of the (new, empty) index in ``index_dir``.

    Each process starts a new segment once its current one holds ``segment_mb`` MB of
    text (which bounds its memory). Returns (documents, bytes of text). Nothing is
    visible in the index before the final table of contents is written.
    """
    storage = FileStorage(str(index_dir))
    if procs <= 1:
        segments, count, size = _build_here(storage, schema, articles, codec, segment_mb, on_article)
    else:
        segments, count, size = _build_in_workers(storage, schema, articles, codec, procs, segment_mb,
                                                  on_article)
    generation = TOC._latest_generation(storage, INDEX_NAME) + 1
    TOC(schema, segments, generation).write(storage, INDEX_NAME)
    clean_files(storage, INDEX_NAME, generation, segments)
    _remove_empty_temp_folder(storage)
    return count, size


def _build_here(storage, schema, articles, codec, segment_mb, on_article):
    segments = []
    count = size = 0
    builder = SegmentBuilder(storage, schema, codec)
    limit = segment_mb * 1e6
    try:
        for article in articles:
            builder.add(article)
            count += 1
            if on_article:
                on_article(article)
            if builder.text_bytes >= limit:
                size += builder.text_bytes
                segments.append(builder.finish())
                builder = SegmentBuilder(storage, schema, codec)
        if builder.doc_count:
            size += builder.text_bytes
            segments.append(builder.finish())
        else:
            builder.cancel()
    except BaseException:
        builder.cancel()
        raise
    return segments, count, size


def _worker(number: int, index_dir: str, schema, codec, segment_mb: float, inbox, outbox) -> None:
    """Worker process: build segments from the batches in ``inbox`` until ``None``."""
    try:
        storage = FileStorage(index_dir)
        builder = SegmentBuilder(storage, schema, codec)
        first_batch = None
        limit = segment_mb * 1e6
        parent = os.getppid()
        while True:
            try:
                item = inbox.get(timeout=1.0)
            except queue.Empty:
                if os.getppid() != parent:  # the build was killed (kill -9): stop too
                    builder.cancel()
                    return
                continue
            if item is None:
                break
            sequence, batch = item
            if first_batch is None:
                first_batch = sequence
            for article in batch:
                builder.add(article)
            if builder.text_bytes >= limit:
                outbox.put(("segment", number, first_batch, builder.text_bytes, builder.finish()))
                builder, first_batch = SegmentBuilder(storage, schema, codec), None
        if builder.doc_count:
            outbox.put(("segment", number, first_batch, builder.text_bytes, builder.finish()))
        else:
            builder.cancel()
        outbox.put(("done", number, None, 0, None))
    except BaseException:  # reported to the parent, which fails the build
        outbox.put(("error", number, None, 0, traceback.format_exc()))


def _build_in_workers(storage, schema, articles, codec, procs, segment_mb, on_article):
    # fork: the workers inherit the loaded jieba dictionary and OpenCC instead of loading
    # them again (several seconds each).
    context = multiprocessing.get_context("fork")
    outbox = context.Queue()
    # Bounded inboxes: the reader never runs far ahead of the workers (memory stays flat).
    inboxes = [context.Queue(maxsize=4) for _ in range(procs)]
    workers = [context.Process(target=_worker, name=f"index-build-{i}", daemon=True,
                               args=(i, storage.folder, schema, codec, segment_mb, inboxes[i], outbox))
               for i in range(procs)]
    for worker in workers:
        worker.start()
    found: list[tuple[int, int, object]] = []
    done = 0
    count = 0
    size = 0

    def drain(block: bool) -> None:
        nonlocal done, size
        while True:
            try:
                kind, number, first, text_bytes, payload = outbox.get(block, timeout=1.0 if block else None) \
                    if block else outbox.get_nowait()
            except queue.Empty:
                return
            if kind == "error":
                raise BuildFailed(f"index build worker {number} failed:\n{payload}")
            if kind == "segment":
                found.append((first, number, payload))
                size += text_bytes
            else:
                done += 1
            if block:
                return

    def send(number: int, item) -> None:
        while True:
            try:
                inboxes[number].put(item, timeout=1.0)
                return
            except queue.Full:
                drain(False)
                check_alive(number)

    def check_alive(number: int) -> None:
        if not workers[number].is_alive():
            drain(False)
            raise BuildFailed(f"index build worker {number} exited (code {workers[number].exitcode})")

    def send_batch(sequence: int, batch: list[Article]) -> None:
        # Round robin while every inbox has room (small builds stay deterministic); a worker
        # busy writing a segment (seconds) gets skipped instead of stalling the reader and,
        # through it, every other worker.
        first = sequence % procs
        while True:
            for step in range(procs):
                number = (first + step) % procs
                try:
                    inboxes[number].put_nowait((sequence, batch))
                    return
                except queue.Full:
                    continue
            try:
                inboxes[first].put((sequence, batch), timeout=0.05)
                return
            except queue.Full:
                drain(False)
                for number in range(procs):
                    check_alive(number)

    try:
        batch: list[Article] = []
        sequence = 0
        for article in articles:
            batch.append(article)
            count += 1
            if on_article:
                on_article(article)
            if len(batch) >= BATCH_ARTICLES:
                send_batch(sequence, batch)
                sequence += 1
                batch = []
            drain(False)
        if batch:
            send_batch(sequence, batch)
        for number in range(procs):
            send(number, None)
        while done < procs:
            drain(True)
            for number, worker in enumerate(workers):
                if not worker.is_alive() and worker.exitcode not in (0, None) and done < procs:
                    drain(False)
                    if done < procs:
                        raise BuildFailed(f"index build worker {number} exited (code {worker.exitcode})")
        for worker in workers:
            worker.join()
    except BaseException:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
        for worker in workers:
            worker.join()
        raise
    found.sort(key=lambda item: (item[0], item[1]))
    return [segment for _, _, segment in found], count, size


#: Memory of a segment builder per MB of text it holds (measured: ~36 MB at 1.7 MB of news and laws,
#: terms growing more slowly than postings), so memory_mb=256 makes segments of ~11 MB of text.
MEMORY_PER_TEXT_MB = 24.0


def segment_megabytes(memory_mb: int) -> float:
    """Text per segment so that one builder stays within ``memory_mb`` (setting index_memory_mb)."""
    return max(1.0, memory_mb / MEMORY_PER_TEXT_MB)
