"""Writing Whoosh segments fast: the one segment writer of builds, incremental changes and merges.

Whoosh's own writer costs one Python call per posting three times over (the analyzer's
token objects, the posting pool and its sorted runs, ``W3PostingsWriter.add_posting``),
which made a rebuild twice as slow as the segmenter. Here documents arrive analyzed
(``engine.documents``: each text normalized and segmented once); the tokens of a
segment's documents are gathered per field and term in compact arrays, and the segment is written through
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
  of position deltas (``Positions.decode_positions`` reads it);
* beside the segment's postings file, its ``.lst`` file holds every posting list again as
  arrays (:mod:`lists`), gathered as the lists are written (a merge decodes its lists in its
  processes, range by range).

:class:`SegmentBuilder` writes the segments of a build (``engine.building`` runs builders
in worker processes), :class:`ChangeWriter` commits incremental changes (the server's
writes, ``index``, ``delete``) through it, and :func:`merge_segments` writes the live
documents of several segments as one through it too, copying their postings (positions
included) instead of analyzing the texts again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import multiprocessing
import os
import pickle
import re
import secrets
import shutil
import struct
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from whoosh import fields
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3Segment, W3TermInfo
from whoosh.filedb.filestore import FileStorage
from whoosh.index import TOC, clean_files
from whoosh.system import pack_ushort
from whoosh.util.numeric import byte_to_length, length_to_byte

from .. import schema as S
from .index import INDEX_NAME, IndexLocked, SegmentInfo, acquire_write_lock, codec, index_schema
from .lists import ArraysWriter, decoded_lists
from .readers import ReaderPool, raw_postings

if TYPE_CHECKING:
    from ..documents import AnalyzedArticle

BLOCK_LIMIT = 128    # postings per block, as W3Codec's default

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

    def add_term(self, term: bytes, docs: Sequence[int], freqs: Sequence[int],
                 values: Sequence[bytes] | None = None) -> None:
        """Append one term's postings (``docs`` ascending, after every document added before)."""
        known = self.terms
        number = known.setdefault(term, len(known))
        self.term_numbers.extend(array("I", (number,)) * len(docs))
        self.docs.extend(docs)
        self.freqs.extend(freqs)
        if self.values is not None and values is not None:
            self.values.extend(values)

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


_ID_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"  # whoosh.util.IDCHARS


def new_segment_id() -> str:
    """A new segment's id: 16 characters from the OS's randomness.

    Whoosh draws ids from the ``random`` module's global generator, which anything in the
    process may seed (Hypothesis does, for every example): two segments then get the same id,
    and a reader of the old one reads the new one's files with the old one's offsets.
    """
    return "".join(secrets.choice(_ID_CHARS) for _ in range(16))


class SegmentBuilder:
    """Gathers documents and writes them as one new segment of the index in ``folder``."""

    def __init__(self, folder: Path | str, schema: fields.Schema | None = None) -> None:
        self.storage = storage = FileStorage(str(folder))
        self.schema = schema = schema if schema is not None else index_schema()
        self.codec = codec()
        self.segment = W3Segment(self.codec, INDEX_NAME, segid=new_segment_id())
        self.perdoc = self.codec.per_document_writer(storage, self.segment)
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
        #: The segment's posting lists as arrays too (its ``.lst`` file, see ``lists``): made by
        #: :meth:`list_arrays` when the postings are written (the document count is final then).
        self.arrays: ArraysWriter | None = None

    def add(self, article: AnalyzedArticle) -> None:
        """Add one analyzed article (``engine.documents.analyze``) as the next document."""
        docnum = self.doc_count
        document = article.values
        tokens = article.tokens
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
        self.text_bytes += article.text_bytes

    def add_copy(self, stored: dict, lengths: dict[str, int], columns: dict[str, object]) -> int:
        """Add a document copied from another segment (a merge): its ``stored`` fields, the
        ``lengths`` of its indexed fields and its raw ``columns`` values; its postings come
        through :meth:`add_postings`. Returns its document number here."""
        docnum = self.doc_count
        perdoc = self.perdoc
        perdoc.start_doc(docnum)
        for name in self._stored_fields:
            field = self.schema[name]
            length = lengths.get(name, 0)
            if name in self._length_bytes:
                self._length_bytes[name].append(length_to_byte(length) if length else 0)
            value = stored.get(name)
            if value is not None or length:
                perdoc.add_field(name, field, value if field.stored else None, length)
            if name in columns:
                perdoc.add_column_value(name, field.column_type, columns[name])
        perdoc.finish_doc()
        self.doc_count += 1
        self.text_bytes += len(str(stored.get(S.TITLE, "")).encode("utf-8")) \
            + len(str(stored.get(S.BODY, "")).encode("utf-8"))
        return docnum

    def add_postings(self, field: str, term: bytes, docs: Sequence[int], freqs: Sequence[int],
                     values: Sequence[bytes] | None = None) -> None:
        """Postings of one term for documents added by :meth:`add_copy` (numbers ascending)."""
        self._postings[field].add_term(term, docs, freqs, values)

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
        """Close and delete the temporary column file (the build failed; the folder is deleted);
        never raises: it runs while another error is on its way (a full disk)."""
        columns = self.perdoc._cols
        try:
            columns._temp.close()
            columns._tempstorage.delete_file(columns._tempname)
        except Exception:  # noqa: BLE001 - already closed by a finish() that failed half-way, or gone
            pass
        if self.arrays is not None:
            with contextlib.suppress(OSError):
                self.arrays.discard()

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
        self.list_arrays().write()
        return self.segment

    def list_arrays(self) -> ArraysWriter:
        """The writer of the segment's ``.lst`` file (made on first use, every document added)."""
        if self.arrays is None:
            self.arrays = ArraysWriter(self.storage.folder, self.segment.segment_id(), self.doc_count)
        return self.arrays

    def _write_field(self, fieldwriter, name: str, field, postings: _FieldPostings) -> None:
        postfile = fieldwriter._postfile
        prefix = pack_ushort(fieldwriter._fieldid)
        lengths = self._length_bytes[name] if field.scorable else None
        fixed = field.format.fixed_value_size()  # None: positions; 0: none; 4: frequency
        terms, bounds, all_docs, all_freqs, all_values = postings.in_term_order()
        buffer = bytearray()
        base = postfile.tell()
        table = []
        list_offsets: list[int] = []  # where each list of two postings or more starts, for self.arrays
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
            list_offsets.append(first_byte)
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
        counts: np.ndarray = np.diff(np.array(bounds, dtype=np.int64))
        listed = counts >= 2  # a term of one document is inlined in the term table
        in_lists = np.repeat(listed, counts)
        self.list_arrays().add(list_offsets, counts[listed], np.frombuffer(all_docs, dtype=np.uint32)[in_lists],
                        np.frombuffer(all_freqs, dtype=np.uint32)[in_lists])


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


# --------------------------------------------------------------------------- merges


def merge_segments(folder: Path | str, toc_segments: Sequence, staging: Path | str,
                   schema: fields.Schema, *, copy_blocks: bool = True, procs: int = 1
                   ) -> tuple[Any, dict[tuple[str, int], int]]:
    """Write the live documents of ``toc_segments`` (segments of the index in ``folder``) as one
    new segment in the folder ``staging``, through :class:`SegmentBuilder`; returns it and the
    map (segment id, old number) -> new number.

    Nothing is analyzed again: stored fields, lengths and column values are copied per
    document, and each term's postings (positions included) per term, read in the term
    table's order (no lookup per term) from the mapped files, the deleted documents left
    out. The result is what Whoosh's own merge (``add_reader``) writes, in our block layout
    (the tests compare both).

    Segments without deletions, all written here, are merged by copying their posting blocks
    instead (``copy_blocks``; see :func:`_merge_by_blocks`, which runs in ``procs`` processes):
    the same postings and statistics, ~5x faster.
    """
    from .readers import _open_segment

    names = os.listdir(folder)
    readers = [_open_segment(str(folder), schema, segment, None, names) for segment in toc_segments]
    partial = _partial_fields(readers)
    if copy_blocks and not any(segment.has_deletions() for segment in toc_segments):
        fast = _merge_by_blocks(readers, toc_segments, staging, schema, procs, partial)
        if fast is not None:
            return fast
    builder = SegmentBuilder(staging, schema)
    mapping: dict[tuple[str, int], int] = {}
    try:
        for segment, reader in zip(toc_segments, readers, strict=True):
            remap = _copy_documents(builder, reader, segment, mapping)
            _copy_postings(builder, reader, remap, partial)
        merged = builder.finish()
    except BaseException:
        builder.cancel()
        raise
    return merged, mapping


def _partial_fields(readers: list) -> set[str]:
    """Character fields (``schema.CHARS_OF``) that some segment lacks while it has their bigram
    field: one written before those fields existed. Merged, such a field would miss that
    segment's documents, so it is left out of the merge; the engine then reads the bigram
    field's expansion for the merged segment, as it did for the old one."""
    partial = set()
    for bigrams, chars in S.CHARS_OF.items():
        for reader in readers:
            fieldmap = getattr(getattr(reader, "_terms", None), "_fieldmap", None)
            if fieldmap is None or (bigrams in fieldmap and chars not in fieldmap):
                partial.add(chars)
    return partial


# Merges without deletions (a build's segments, ``optimize`` after one): each segment's
# documents follow the previous segments' (new number = old + the documents before it), so a
# term's merged posting list is its lists in segment order, each block kept as written and only
# its document numbers moved: the first id of a block (the others are deltas) and the last id
# in its info tuple. The old path unpickled and re-encoded ~40 million postings (positions
# included) for the site's 42k articles, ~110 s; this copies bytes. A segment's part of 128
# postings or more keeps its blocks as cut (its last may hold fewer); shorter parts, and
# postings inlined in a term table, are decoded and joined into blocks of 128 (a build's ~20
# segments otherwise left a term of a few hundred documents in ~16 blocks of ~20). A layout
# Whoosh's readers and ours read like any other.


class _NotOurLayout(Exception):
    """A posting block or term entry not as :class:`SegmentBuilder` writes it (Whoosh's own writer)."""


_TERMINFO_SIZE = W3TermInfo._struct.size
_unpack_terminfo = W3TermInfo._struct.unpack_from
_unpack_extent = struct.Struct(">qi").unpack_from
_pack_ids = struct.Struct(">II").pack
_pack_q = struct.Struct(">q").pack
_unpack_q = struct.Struct(">q").unpack_from
_unpack_lengths = _LENGTHS.unpack_from
_BLOCK_HEAD = b"(K"            # an info tuple: MARK, then its count (always below 256)
_INFO_TAIL_SIZE = 17           # G + 8 bytes (max weight), K\x00 (compression), K min, K max, t, .


def _int_at(data, position: int) -> tuple[int, int]:
    """The int an opcode at ``position`` pickles, and the opcode's size (K, M or J)."""
    op = data[position]
    if op == 0x4B:    # K
        return data[position + 1], 2
    if op == 0x4D:    # M
        return data[position + 1] | data[position + 2] << 8, 3
    if op == 0x4A:    # J
        return int.from_bytes(data[position + 1:position + 5], "little", signed=True), 5
    raise _NotOurLayout(f"not an int opcode: {op!r}")


def _block_head(data, position: int) -> tuple[int, int, int, int, int, int, int]:
    """The block whose 4-byte size is at ``position``, as :class:`SegmentBuilder` lays it out:
    (size as written, negative for a list's last; where its info tuple starts; where it ends;
    its count; its last id and that opcode's size; where its data starts)."""
    size = int.from_bytes(data[position:position + 4], "big", signed=True)
    block = position + 4
    block_end = block + (-size if size < 0 else size)
    if data[block] != 0x28 or data[block + 1] != 0x4B:  # (K: our info tuple
        raise _NotOurLayout("block info")
    last, last_size = _int_at(data, block + 3)
    start = block + 3 + last_size + _INFO_TAIL_SIZE
    if data[start - 2] != 0x74 or data[start - 1] != 0x2E:  # t.
        raise _NotOurLayout("block info tail")
    return size, block, block_end, data[block + 2], last, last_size, start


def _copy_blocks(out: bytearray, postings, offset: int, length: int, base: int, final: bool) -> None:
    """Append the blocks of the posting list at ``offset`` (magic excluded) with every document
    number moved by ``base``; its last block is the merged list's last when ``final``."""
    position = len(out)
    out += postings[offset + 4:offset + length]  # copied whole, then patched in place
    end = len(out)
    while position < end:
        size, block, block_end, count, last, last_size, data = _block_head(out, position)
        if count > 3:
            if out[data] != 0x28:
                raise _NotOurLayout("block ids")
            first_at = data + 1
        else:
            first_at = data
        first, first_size = _int_at(out, first_at)
        new_first = _int_op(first + base)
        new_last = _int_op(last + base)
        # The later opcode first: the earlier one's offset holds whatever the later one's size.
        out[first_at:first_at + first_size] = new_first
        out[block + 3:block + 3 + last_size] = new_last
        grow = len(new_first) - first_size + len(new_last) - last_size
        if grow or (size < 0 and not final):
            new_size = block_end - block + grow
            out[position:position + 4] = _pack_int_be(-new_size if size < 0 and final else new_size)
            block_end += grow
            end += grow
        position = block_end


def _inlined_parts(value: bytes) -> tuple[int, int, bytes]:
    """(document, frequency, the values tuple's pickle) of an inlined term entry as written here."""
    doc, doc_size = _int_at(value, _TERMINFO_SIZE)
    at = _TERMINFO_SIZE + doc_size
    if value[at] != 0x85:
        raise _NotOurLayout("inlined ids")
    freq, freq_size = _int_at(value, at + 1)
    at += 1 + freq_size
    if value[at] != 0x85 or value[-2:] != _TUPLE3 + _STOP:
        raise _NotOurLayout("inlined weights")
    return doc, freq, value[at + 1:-2]


def _merge_terms(prefix: bytes, fixed: int | None, parts: list[tuple[list[bytes], list[bytes]]], postings: list,
                 bases: list[int]) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The merged posting lists and term table entries of a range of one field's terms; ``parts``
    holds each segment's (terms, term table values) of the range, ``postings`` each segment's
    postings file. The lists' offsets in the entries count from the start of the returned bytes."""
    keys: list[bytes] = []
    values: list[bytes] = []
    owners = array("I")
    for number, (terms, infos) in enumerate(parts):
        keys += terms
        values += infos
        owners.extend(array("I", (number,)) * len(terms))
    # Each segment's terms are sorted: one stable sort merges the runs (equal terms stay in
    # segment order, their documents ascending).
    order = sorted(range(len(keys)), key=keys.__getitem__)
    table: list[tuple[bytes, bytes]] = []
    out = bytearray()
    base_offset = 0
    n = len(order)
    i = 0
    while i < n:
        index = order[i]
        term = keys[index]
        j = i + 1
        while j < n and keys[order[j]] == term:
            j += 1
        if j == i + 1:
            owner = owners[index]
            value = values[index]
            base = bases[owner]
            if value[0]:  # inlined: one document
                doc, doc_size = _int_at(value, _TERMINFO_SIZE)
                new = doc + base
                table.append((prefix + term, value[:15] + _pack_ids(new, new) + _int_op(new)
                              + value[_TERMINFO_SIZE + doc_size:]))
            else:
                offset, length = _unpack_extent(value, _TERMINFO_SIZE)
                minid, maxid = struct.unpack_from(">II", value, 15)
                first_byte = base_offset + len(out)
                out += WHOOSH3_HEADER_MAGIC
                _copy_blocks(out, postings[owner], offset, length, base, True)
                table.append((prefix + term, value[:15] + _pack_ids(minid + base, maxid + base)
                              + _EXTENT(first_byte, base_offset + len(out) - first_byte)))
        else:
            first_byte = base_offset + len(out)
            out += WHOOSH3_HEADER_MAGIC
            total = count = maxlen = 0
            maxweight = 0.0
            minlen = 255
            first_doc = -1
            last_doc = 0
            # A term found in one document of a segment is inlined in its term table: consecutive
            # such documents of the merged list go into one block (not a block each: ~33 bytes
            # apiece, and a block more to decode per search).
            singles: list[tuple[int, int, bytes, int, int]] = []
            for k in range(i, j):
                index = order[k]
                owner = owners[index]
                value = values[index]
                base = bases[owner]
                _, weight, df, bmin, bmax, bmaxw, minid, maxid = _unpack_terminfo(value)
                total += int(weight)
                count += df
                minlen = min(minlen, bmin)
                maxlen = max(maxlen, bmax)
                maxweight = max(maxweight, bmaxw)
                if first_doc < 0:
                    first_doc = minid + base
                last_doc = maxid + base
                final = k == j - 1
                if value[0]:
                    doc, freq, inlined_values = _inlined_parts(value)
                    singles.append((doc + base, freq, inlined_values[:-1], bmin, bmin))
                elif df < BLOCK_LIMIT:
                    # A short list (the segment's part of a term found in fewer than a block's
                    # documents): its postings join the pending block instead of staying a
                    # short block of their own. A build merges ~20 segments: a term of a few
                    # hundred documents was ~16 blocks of ~20 postings, each block a cost
                    # of every search that reads the term; now it is full blocks.
                    offset, length = _unpack_extent(value, _TERMINFO_SIZE)
                    singles += _list_postings(postings[owner], offset, length, base, fixed)
                else:
                    if singles:
                        _single_block(out, singles, fixed, False)
                        singles = []
                    offset, length = _unpack_extent(value, _TERMINFO_SIZE)
                    _copy_blocks(out, postings[owner], offset, length, base, final)
                while len(singles) >= BLOCK_LIMIT:
                    _single_block(out, singles[:BLOCK_LIMIT], fixed, final and len(singles) == BLOCK_LIMIT)
                    del singles[:BLOCK_LIMIT]
                if final and singles:
                    _single_block(out, singles, fixed, True)
                    singles = []
            table.append((prefix + term, _TERMINFO(0, float(total), count, minlen, maxlen, maxweight,
                                                   first_doc, last_doc)
                          + _EXTENT(first_byte, base_offset + len(out) - first_byte)))
        i = j
    return bytes(out), table


def _single_block(out: bytearray, singles: list[tuple[int, int, bytes, int, int]], fixed: int | None,
                  final: bool) -> None:
    """Append one block of postings taken from inlined term entries or short lists: (document,
    frequency, its value's pickle opcode, and the smallest and largest length byte of the
    documents it stands for) each; encoded as :meth:`SegmentBuilder._write_field` encodes a block."""
    count = len(singles)
    docs = [posting[0] for posting in singles]
    freqs = [posting[1] for posting in singles]
    maxweight = max(freqs)
    ids = _int_tuple([docs[0]] + [b - a for a, b in zip(docs, docs[1:])])
    weights = _NONE if maxweight == 1 else _int_tuple(freqs)
    if fixed is None:
        ops = b"".join([posting[2] for posting in singles])  # each a bytes op
        block_values = ops + _TUPLE_N[count] if count in _TUPLE_N else _MARK + ops + _TUPLE
    elif fixed == 0:
        block_values = _NONE
    else:
        block_values = _bytes_op(b"".join([_COUNT[f] if f < 1024 else _pack_u4_be(f) for f in freqs]))
    data = ids + weights + block_values + _TUPLE3 + _STOP
    info = _block_info(count, docs[-1], maxweight, min(posting[3] for posting in singles),
                       max(posting[4] for posting in singles))
    size = len(info) + len(data)
    out += _pack_int_be(-size if final else size)
    out += info
    out += data


def _list_postings(postings, offset: int, length: int, base: int, fixed: int | None
                   ) -> list[tuple[int, int, bytes, int, int]]:
    """The postings of the list at ``offset`` (magic excluded) as :func:`_single_block` takes
    them, document numbers moved by ``base``; each carries its block's length bounds (a block
    keeps only those, and the bounds of blocks joined are the bounds of their bounds)."""
    found: list[tuple[int, int, bytes, int, int]] = []
    position = offset + 4
    end = offset + length
    while position < end:
        _, _, block_end, count, _, _, data = _block_head(postings, position)
        if bytes(postings[data - 8:data - 6]) != b"K\x00":
            raise _NotOurLayout("compressed block")
        minlen, maxlen = postings[data - 5], postings[data - 3]
        ids, weights, values = pickle.loads(postings[data:block_end])
        if len(ids) != count or (weights is not None and len(weights) != count):
            raise _NotOurLayout("block counts")
        doc = base
        for i, delta in enumerate(ids):
            doc = delta + base if i == 0 else doc + delta
            freq = 1 if weights is None else weights[i]
            if fixed is None:
                op = _bytes_op(values[i])
            else:
                op = b""  # fixed 0: no values; fixed 4: the frequency, encoded again from freq
            found.append((doc, freq, op, minlen, maxlen))
        position = block_end
    return found


def _write_range(fieldwriter, out: bytes, table: list[tuple[bytes, bytes]]) -> int:
    """Append what :func:`_merge_terms` returned to the field being written, its offsets moved to
    where its bytes land in the postings file; returns where they land."""
    postfile = fieldwriter._postfile
    base = postfile.tell()
    postfile.write(out)
    if base:
        table = [(key, value if value[0] else
                  value[:_TERMINFO_SIZE] + _pack_q(_unpack_q(value, _TERMINFO_SIZE)[0] + base)
                  + value[_TERMINFO_SIZE + 8:])
                 for key, value in table]
    _add_terms(fieldwriter._tindex, table)
    return base


# What the processes of a parallel merge read: set before they are forked, inherited (mapped files).
_RANGE_SOURCES: tuple | None = None


def _merge_range(task: tuple) -> tuple[bytes, list[tuple[bytes, bytes]], tuple]:
    """:func:`_merge_terms` of one range of terms (``task``: field prefix, value size, the field's
    prefix in each segment, the range) of the segments in ``_RANGE_SOURCES``, with its lists
    decoded for the segment's ``.lst`` file (:func:`lists.decoded_lists`, offsets from the start
    of the range's bytes): here, in the merge's processes."""
    prefix, fixed, prefix_of, low, high = task
    sources, postings, bases = _RANGE_SOURCES  # type: ignore[misc]
    parts = [_field_entries(tindex, table, source_prefix, low, high) if source_prefix is not None else ([], [])
             for (tindex, table, _, _), source_prefix in zip(sources, prefix_of, strict=True)]
    out, table = _merge_terms(prefix, fixed, parts, postings, bases)
    extents = [_unpack_extent(value, _TERMINFO_SIZE) for _, value in table if not value[0]]
    return out, table, decoded_lists(out, extents)


def _field_entries(tindex, buffer, prefix: bytes, low: bytes | None = None,
                   high: bytes | None = None) -> tuple[list[bytes], list[bytes]]:
    """(terms, term table values) of one field of a segment's term table, in key order: the
    terms from ``low`` (included) to ``high`` (excluded), or all of them."""
    terms: list[bytes] = []
    infos: list[bytes] = []
    position = tindex.closest_key_pos(prefix + low if low is not None else prefix)
    if position is None:
        return terms, infos
    end = tindex.endofdata
    stop = prefix + high if high is not None else None
    while position < end:
        key_length, value_length = _unpack_lengths(buffer, position)
        key_start = position + 8
        value_start = key_start + key_length
        key = buffer[key_start:value_start]
        if not key.startswith(prefix) or (stop is not None and key >= stop):
            break
        terms.append(key[2:])
        position = value_start + value_length
        infos.append(buffer[value_start:position])
    return terms, infos


#: Term table entries (of all the merged segments) a field is merged by at a time: the merge holds
#: a range's entries in memory, not a whole field's (3.4 million for the site's bigrams, ~1 GB).
MERGE_CHUNK_ENTRIES = 400_000


def _term_ranges(sources: list, prefix_of: list, counts: list[int]) -> list[tuple[bytes | None, bytes | None]]:
    """Ranges of terms (low, high) splitting a field into chunks of ~MERGE_CHUNK_ENTRIES entries,
    cut at the terms of the largest segment."""
    largest = max((number for number, prefix in enumerate(prefix_of) if prefix is not None), key=counts.__getitem__)
    tindex, table = sources[largest][:2]
    terms, _ = _field_entries(tindex, table, prefix_of[largest])
    chunks = min(len(terms), len(terms) * len(sources) // MERGE_CHUNK_ENTRIES) or 1
    cuts: list[bytes | None] = [terms[len(terms) * k // chunks] for k in range(1, chunks)]
    return list(zip([None, *cuts], [*cuts, None], strict=True))


def _mapped_buffer(structfile):
    """The bytes behind one of :mod:`readers`' mapped files (None: not such a file)."""
    buffer = getattr(getattr(structfile, "_positional", None), "_buffer", None)
    return buffer if buffer is not None and not isinstance(buffer, memoryview) else None


def _merge_by_blocks(readers: list, toc_segments: Sequence, staging: Path | str, schema: fields.Schema,
                     procs: int = 1, partial: frozenset[str] | set[str] = frozenset()
                     ) -> tuple[Any, dict[tuple[str, int], int]] | None:
    """:func:`merge_segments` for segments without deletions, by copying posting blocks; None
    when a segment was not written by :class:`SegmentBuilder` (the caller takes the slow path).
    With ``procs`` > 1, ranges of terms are merged in that many forked processes (the parent
    writes their results in order)."""
    sources = []
    for reader in readers:
        terms = reader._terms
        tindex = getattr(terms, "_tindex", None)
        table = _mapped_buffer(getattr(tindex, "dbfile", None))
        postings = _mapped_buffer(getattr(terms, "_postfile", None))
        if table is None or postings is None or getattr(tindex, "hashtype", None) != 0:
            return None
        sources.append((tindex, table, postings, terms._fieldmap))
    builder = SegmentBuilder(staging, schema)
    mapping: dict[tuple[str, int], int] = {}
    bases = []
    try:
        for segment, reader in zip(toc_segments, readers, strict=True):
            bases.append(builder.doc_count)
            _copy_documents_raw(builder, reader, segment, mapping)
        builder.perdoc.close()
        # Every document is kept: the field length totals are the segments' own, exact (summing
        # the documents' length bytes, as a merge with deletions must, rounds each length).
        totals: dict[str, int] = defaultdict(int)
        for segment in toc_segments:
            for name, length in segment._fieldlengths.items():
                totals[name] += length
        builder.segment._fieldlengths = totals
        fieldwriter = builder.codec.field_writer(builder.storage, builder.segment)
        counts = [segment.doc_count_all() for segment in toc_segments]
        # The fields any segment has terms of, numbered in the order they are written (as
        # W3FieldWriter.start_field numbers them), each cut into ranges of terms.
        tasks = []
        names: list[str] = []
        for name in sorted(builder._postings):
            prefix_of = [pack_ushort(fieldmap[name]) if name in fieldmap else None for _, _, _, fieldmap in sources]
            if name in partial or all(prefix is None for prefix in prefix_of):
                continue
            prefix = pack_ushort(len(names))
            names.append(name)
            fixed = schema[name].format.fixed_value_size()
            tasks += [(name, (prefix, fixed, prefix_of, low, high))
                      for low, high in _term_ranges(sources, prefix_of, counts)]
        global _RANGE_SOURCES
        _RANGE_SOURCES = (sources, [postings for _, _, postings, _ in sources], bases)
        try:
            pool = None
            results: Iterator[tuple[bytes, list[tuple[bytes, bytes]], tuple]]
            if procs > 1 and len(tasks) > 1:
                pool = multiprocessing.get_context("fork").Pool(min(procs, len(tasks)))
                results = pool.imap(_merge_range, [task for _, task in tasks])
            else:
                results = map(_merge_range, [task for _, task in tasks])
            current = None
            try:
                for (name, _), (out, table, arrays) in zip(tasks, results, strict=True):
                    if name != current:
                        if current is not None:
                            fieldwriter.finish_field()
                        fieldwriter.start_field(name, schema[name])
                        current = name
                    base = _write_range(fieldwriter, out, table)
                    offsets, list_counts, ids, freqs = arrays
                    builder.list_arrays().add(np.array(offsets, dtype=np.int64) + base, list_counts, ids, freqs)
                if current is not None:
                    fieldwriter.finish_field()
            finally:
                if pool is not None:
                    pool.terminate()
                    pool.join()
        finally:
            _RANGE_SOURCES = None
        fieldwriter.close()
        builder.segment.set_doc_count(builder.doc_count)
        builder.list_arrays().write()
    except _NotOurLayout:
        builder.cancel()
        _delete_segment_files(staging, builder.segment)
        return None
    except BaseException:
        builder.cancel()
        raise
    return builder.segment, mapping


def _copy_documents_raw(builder: SegmentBuilder, reader, segment, mapping: dict) -> None:
    """Add every document of a segment without deletions to ``builder``: stored fields copied as
    their compressed bytes (unpickling and compressing them again was a third of a merge)."""
    from whoosh.codec.whoosh3 import LENGTHS_COLUMN, STORED_COLUMN
    from whoosh.columns import VarBytesColumn

    schema = builder.schema
    count = segment.doc_count_all()
    perdoc = builder.perdoc
    stored_in = reader._perdoc._cached_reader("_stored", STORED_COLUMN)
    stored_out = perdoc._colwriters["_stored"]._child  # the compressed column under the pickles
    if stored_in is None:
        raise _NotOurLayout("no stored fields column")
    read_raw = functools.partial(VarBytesColumn.Reader.__getitem__, stored_in._child)
    write_raw = functools.partial(VarBytesColumn.Writer.add, stored_out)
    scored = [name for name in builder._stored_fields if name in builder._length_bytes and schema[name].scorable]
    lengths = {name: _length_bytes_of(reader, name, count).tolist() for name in scored}
    columns = []
    for name in builder._stored_fields:
        column = schema[name].column_type
        if column and reader.has_column(name):
            values = reader.column_reader(name, column)
            columns.append((name, column, values.raw_column() if hasattr(values, "raw_column") else values))
    segment_id = segment.segment_id()
    add_column_value = perdoc.add_column_value
    for docnum in range(count):
        new = builder.doc_count
        perdoc.start_doc(new)
        for name, found in lengths.items():
            byte = found[docnum]
            if byte:
                add_column_value(f"_{name}_len", LENGTHS_COLUMN, byte)  # what add_field writes
        for name, column, values in columns:
            add_column_value(name, column, values[docnum])
        raw = read_raw(docnum)
        if raw:
            write_raw(new, raw)
        perdoc.finish_doc()
        builder.doc_count += 1
        mapping[(segment_id, docnum)] = new


def _delete_segment_files(folder: Path | str, segment) -> None:
    prefix = segment.segment_id() + "."
    for name in os.listdir(folder):
        if name.startswith(prefix):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(folder, name))


def _copy_documents(builder: SegmentBuilder, reader, segment, mapping: dict) -> list[int]:
    """Add the segment's live documents to ``builder``; its old -> new numbers (-1: deleted)."""
    schema = builder.schema
    count = segment.doc_count_all()
    remap = [-1] * count
    scored = [name for name in builder._length_bytes if schema[name].scorable]
    length_columns = {name: _length_bytes_of(reader, name, count) for name in scored}
    columns = {}
    for name in schema.names():
        column = schema[name].column_type
        if column and reader.has_column(name):
            values = reader.column_reader(name, column)
            columns[name] = values.raw_column() if hasattr(values, "raw_column") else values
    segment_id = segment.segment_id()
    for docnum in range(count):
        if segment.is_deleted(docnum):
            continue
        lengths = {name: byte_to_length(int(bytes_[docnum])) for name, bytes_ in length_columns.items()
                   if bytes_[docnum]}
        new = builder.add_copy(reader.stored_fields(docnum), lengths,
                               {name: values[docnum] for name, values in columns.items()})
        remap[docnum] = new
        mapping[(segment_id, docnum)] = new
    return remap


def _length_bytes_of(reader, field: str, count: int) -> np.ndarray:
    from whoosh.codec.whoosh3 import LENGTHS_COLUMN

    try:
        column = reader._perdoc._cached_reader(f"_{field}_len", LENGTHS_COLUMN)
        return np.fromiter(column, dtype=np.uint8, count=count)
    except Exception:  # noqa: BLE001 - another codec: the public call
        return np.array([length_to_byte(reader.doc_field_length(d, field)) for d in range(count)], dtype=np.uint8)


def _copy_postings(builder: SegmentBuilder, reader, remap: list[int], partial: set[str]) -> None:
    """Every posting of the segment's live documents into ``builder``, term by term, renumbered
    (the fields in ``partial`` left out)."""
    terms = reader._terms
    postfile = terms._postfile
    new_reader = reader._codec.postings_reader
    postings = builder._postings
    formats = {name: builder.schema[name].format for name in postings}
    for (name, btext), info in terms.items():
        target = postings.get(name)
        if target is None or name in partial:
            continue
        with_values = target.values is not None
        if info.is_inlined():  # one document, in the term table itself (most bigram terms)
            ids, weights, values = info.inlined_postings()
            new = remap[ids[0]]
            if new >= 0:
                target.add_term(btext, (new,), (int(weights[0]),), values[:1] if with_values else None)
            continue
        ids, freqs, block_values = _block_postings(new_reader(postfile, info, formats[name]), with_values)
        kept = [(remap[d], f, i) for i, (d, f) in enumerate(zip(ids, freqs)) if remap[d] >= 0]
        if not kept:
            continue
        values = [block_values[i] for _, _, i in kept] if block_values is not None else None
        target.add_term(btext, [d for d, _, _ in kept], [int(f) for _, f, _ in kept], values)


def _block_postings(matcher, with_values: bool) -> tuple[list, list, list | None]:
    """(ids, frequencies, values) of every posting of a block matcher, a block at a time."""
    ids: list = []
    freqs: list = []
    values: list | None = [] if with_values else None
    while matcher.is_active():
        if matcher._ids is None:
            matcher._read_ids()
        if matcher._weights is None:
            matcher._read_weights()
        ids.extend(matcher._ids[matcher._i:])
        freqs.extend(matcher._weights[matcher._i:])
        if values is not None:
            if matcher._values is None:
                matcher._read_values()
            values.extend(matcher._values[matcher._i:])
        matcher._next_block()
    return ids, freqs, values


class ChosenSegmentsGone(Exception):
    """The segments chosen for a merge are no longer all in the newest commit (merged by someone else)."""


def merge(segment_ids: Sequence[str], folder: Path | str, staging: Path | str, lock_timeout: float
          ) -> tuple[int, int]:
    """Replace the segments ``segment_ids`` of the index in ``folder`` by one: returns (its
    documents, the commit number). :func:`prepare_merge`, then :meth:`PreparedMerge.swap`."""
    prepared = prepare_merge(segment_ids, folder, staging)
    return prepared.documents, prepared.swap(lock_timeout)


@dataclasses.dataclass
class PreparedMerge:
    """A merged segment written in its staging folder, not yet part of any commit."""

    folder: Path
    staging: Path
    chosen: list  # the chosen segments as the merge read them
    merged: Any
    mapping: dict[tuple[str, int], int]

    @property
    def documents(self) -> int:
        return self.merged.doc_count()

    def swap(self, lock_timeout: float) -> int:
        """Under the write lock for a moment: the newest commit is read again, deletions committed
        meanwhile in the chosen segments are carried to their merged copies (a replaced article
        deletes its old one), the files move in and the next table of contents lists the merged
        segment in place of the chosen ones. Returns the commit number; raises
        :class:`ChosenSegmentsGone` when another merge took them meanwhile, IndexLocked when the
        lock stayed busy for ``lock_timeout``."""
        storage = FileStorage(str(self.folder))
        ids = [segment.segment_id() for segment in self.chosen]
        merged = self.merged
        lock = acquire_write_lock(storage, lock_timeout)
        try:
            latest = TOC.read(storage, INDEX_NAME)
            now = {segment.segment_id(): segment for segment in latest.segments}
            if any(segment_id not in now for segment_id in ids):
                raise ChosenSegmentsGone("the chosen segments changed meanwhile")
            for before in self.chosen:
                for docnum in set(now[before.segment_id()].deleted_docs()) - set(before.deleted_docs()):
                    merged.delete_document(self.mapping[(before.segment_id(), docnum)])
            for name in os.listdir(self.staging):
                if name.startswith(merged.segment_id() + "."):
                    os.replace(self.staging / name, self.folder / name)
            segments = []
            for segment in latest.segments:
                if segment.segment_id() == ids[0]:
                    segments.append(merged)
                elif segment.segment_id() not in ids:
                    segments.append(segment)
            generation = latest.generation + 1
            TOC(latest.schema, segments, generation).write(storage, INDEX_NAME)
            # The merged segments' files go; readers that have them open keep reading them.
            clean_files(storage, INDEX_NAME, generation, segments)
            return generation
        finally:
            lock.release()


def prepare_merge(segment_ids: Sequence[str], folder: Path | str, staging: Path | str) -> PreparedMerge:
    """Write the live documents of the segments ``segment_ids`` of the index in ``folder`` as one
    segment in ``staging`` (a folder inside the generation, which commits made meanwhile leave
    alone), without the write lock: the long part of a merge, while writes go on."""
    storage = FileStorage(str(folder))
    toc = TOC.read(storage, INDEX_NAME)
    by_id = {segment.segment_id(): segment for segment in toc.segments}
    if any(segment_id not in by_id for segment_id in segment_ids):
        raise ChosenSegmentsGone("the chosen segments changed meanwhile")
    chosen = [by_id[segment_id] for segment_id in segment_ids]
    merged, mapping = merge_segments(folder, chosen, staging, toc.schema)
    return PreparedMerge(Path(folder), Path(staging), chosen, merged, mapping)


_TOC_TEMP = re.compile(rf"^_{INDEX_NAME}_\d+\.toc\.[\d.]+$")


def remove_unlisted_files(folder: Path | str) -> list[str]:
    """Remove, unless a writer holds the write lock, the files killed or failed writers left in
    ``folder``: temporary folders (posting runs ``*.tmp``, ``*.ctmp``), half-written tables of
    contents and segment files no commit lists. Returns their names."""
    removed: list[str] = []
    storage = FileStorage(str(folder))
    try:
        lock = acquire_write_lock(storage, 0.0)
    except IndexLocked:
        return removed
    try:
        try:
            toc = TOC.read(storage, INDEX_NAME)
        except (OSError, ValueError, EOFError):
            return removed
        live = {segment.segment_id() for segment in toc.segments}
        segment_pattern = TOC._segment_pattern(INDEX_NAME)
        for entry in os.listdir(folder):
            full = Path(folder) / entry
            if entry.startswith("."):
                continue
            if full.is_dir() and entry.endswith(".tmp"):
                shutil.rmtree(full, ignore_errors=True)
                removed.append(entry)
            elif entry.endswith(".ctmp") or _TOC_TEMP.match(entry):
                full.unlink(missing_ok=True)
                removed.append(entry)
            else:
                match = segment_pattern.match(entry)
                if match and match.group(1) not in live and not TOC._pattern(INDEX_NAME).match(entry):
                    full.unlink(missing_ok=True)
                    removed.append(entry)
    finally:
        lock.release()
    return removed


# --------------------------------------------------------------------------- commits


def commit_segments(folder: Path | str, segments: Sequence) -> int:
    """Write the next table of contents of the (new) index in ``folder`` listing ``segments``
    (those :meth:`SegmentBuilder.finish` returned) and delete files no commit lists; returns
    the commit number. Nothing a builder wrote is visible before this."""
    storage = FileStorage(str(folder))
    generation = TOC._latest_generation(storage, INDEX_NAME) + 1
    TOC(index_schema(), list(segments), generation).write(storage, INDEX_NAME)
    clean_files(storage, INDEX_NAME, generation, list(segments))
    remove_empty_temp_folder(folder)
    return generation


def remove_empty_temp_folder(folder: Path | str) -> None:
    """Remove the column writers' temporary folder once no builder uses it (it is empty then)."""
    with contextlib.suppress(OSError):
        os.rmdir(os.path.join(str(folder), f"{INDEX_NAME}.tmp"))


# --------------------------------------------------------------------------- incremental changes


class ChangeWriter:
    """Changes to a live index in one commit: deletions marked in its segments, additions as new segments.

    The incremental counterpart of a build: added articles go through the same
    :class:`SegmentBuilder` (a commit of ten short articles through Whoosh's own writer
    cost ~450 ms, most of it per-term Python in its posting pool and codec); deletions
    are marked in the existing segments, as Whoosh's ``SegmentWriter.delete_document``
    does, and :meth:`commit` writes the new table of contents like its commit.

    The commit it starts from is read once, when the write lock is taken, and pinned:
    the documents of an id are looked up in that commit's own segments (through
    ``pool``, whose readers a long-lived writer keeps between commits). Holds Whoosh's
    write lock from construction to :meth:`commit` or :meth:`cancel`, so it excludes
    other writers (the CLI, merges) and they exclude it.
    """

    def __init__(self, folder: Path | str, *, timeout: float = 0.0, segment_mb: float = 32.0,
                 pool: ReaderPool | None = None) -> None:
        self.folder = str(folder)
        self.storage = storage = FileStorage(self.folder)
        self.writelock = acquire_write_lock(storage, timeout)
        self.is_closed = False
        try:
            toc = TOC.read(storage, INDEX_NAME)
        except BaseException:
            self.writelock.release()
            raise
        self.schema = toc.schema
        #: The commit this writer starts from; :meth:`commit` writes the next one.
        self.base = toc.generation
        self.generation = toc.generation + 1
        self.segments = list(toc.segments)
        self._pool = pool if pool is not None else ReaderPool()
        self._views: list | None = None  # the base commit's segments, opened for id lookups
        self._segment_limit = segment_mb * 1e6
        self._builder: SegmentBuilder | None = None
        self._added: list = []  # finished new segments
        self.deleted = 0

    # -- the changes ----------------------------------------------------------------------

    def delete_id(self, doc_id: str) -> int:
        """Delete the live documents of the base commit with this id; returns how many."""
        if self._views is None:
            self._views = self._pool.views(self.storage, self.schema, self.segments, self.base)
            self._pool.keep_only(self.folder, [segment.segment_id() for segment in self.segments])
        found = 0
        for segment, view in zip(self.segments, self._views, strict=True):
            if (S.ID, doc_id) not in view:
                continue
            for docnum in raw_postings(view, S.ID, doc_id).all_ids():
                if not segment.is_deleted(docnum):
                    segment.delete_document(docnum)
                    found += 1
        self.deleted += found
        return found

    def add(self, article: AnalyzedArticle) -> None:
        """Add an analyzed article as a new document (in a new segment of this commit)."""
        if self._builder is None:
            self._builder = SegmentBuilder(self.folder, self.schema)
        self._builder.add(article)
        if self._builder.text_bytes >= self._segment_limit:
            self._added.append(self._builder.finish())
            self._builder = None

    # -- the end --------------------------------------------------------------------------

    def commit(self) -> list[SegmentInfo]:
        """Write the new segments and the table of contents (commit number :attr:`generation`);
        returns the new commit's segments (for the merge policy: no second read)."""
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
            TOC(self.schema, final, self.generation).write(self.storage, INDEX_NAME)
        except BaseException:
            self.cancel()
            raise
        try:
            clean_files(self.storage, INDEX_NAME, self.generation, final)
        finally:
            self._release()
        return [SegmentInfo(s.segment_id(), s.doc_count_all(), s.deleted_count()) for s in final]

    def committed(self) -> bool:
        """Whether this writer's table of contents reached the disk (after :meth:`commit` raised)."""
        return self.storage.file_exists(TOC._filename(INDEX_NAME, self.generation))

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
        remove_empty_temp_folder(self.folder)
        with contextlib.suppress(Exception):
            self.writelock.release()
