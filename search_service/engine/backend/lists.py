"""A segment's posting lists as plain arrays, in one file beside its postings file.

A W3 posting list is a chain of pickled blocks (see :mod:`postings`). Even read by slicing
its bytes, a frequent term of the site's 42,000 articles costs ~0.2 ms to decode, a short list
~15 µs, and decoding was ~0.8 ms of a first-pass search there, the largest part of its
matching. The service's writers therefore also write, beside each segment, every list of its
postings file as two arrays: the document numbers (``uint16`` when the segment has at most
65,536 documents, else ``uint32``) and the term frequencies (one byte each; the few of 255 or
more, in the longest articles, are 255 there and kept exactly in a short table beside).
Reading a list is then a binary search over the lists' offsets in the postings file, the key
the term table already gives, and two slices of the map: ~2 µs.

The file is ``<segment id>.lst``, one of the segment's own files by Whoosh's naming: written
before the commit that lists the segment, moved with it by a merge, deleted with it. It repeats
what the postings file says and never replaces it (phrase checks read positions there): a
segment without it (an index written before it, or by Whoosh's own writer), or with one that
is not what this module writes, is read from its postings file as before. It adds ~3 bytes a
posting (the postings file, positions included, takes ~13): at the site's size, 170 MB beside
a postings file of 680 MB.

Layout, little-endian::

    magic           8 bytes        b"SSLST\\x00\\x00\\x02"
    lists           uint64         n
    postings        uint64         total
    large           uint64         m, the frequencies of 255 or more
    id size         uint8          2 or 4
    (zeros)         7 bytes
    offsets         uint64[n]      each list's offset in the postings file, ascending
    starts          uint64[n + 1]  where each list's postings start in the arrays below
    large at        uint64[m]      the postings whose frequency is 255 or more, ascending
    large values    uint32[m]      their frequencies, then zeros to a multiple of 8 bytes
    ids             total × id size, then zeros to a multiple of 8 bytes
    frequencies     uint8[total]   255 where the frequency is 255 or more
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .postings import list_arrays

__all__ = ["EXTENSION", "ArraysWriter", "PostingArrays", "decoded_lists", "open_arrays"]

log = logging.getLogger(__name__)

EXTENSION = ".lst"
_MAGIC = b"SSLST\x00\x00\x02"
_HEAD = struct.Struct("<8sQQQB7x")
_ID_TYPES: dict[int, np.dtype] = {2: np.dtype("<u2"), 4: np.dtype("<u4")}
#: A frequency of this or more is this in the one-byte array, and exact in the table of large ones.
_LARGE = 255


def _padded(size: int) -> int:
    return -(-size // 8) * 8


class _Layout(NamedTuple):
    offsets: int
    starts: int
    large_at: int
    large_values: int
    ids: int
    freqs: int
    end: int


def _layout(lists: int, total: int, large: int, id_size: int) -> _Layout:
    offsets = _HEAD.size
    starts = offsets + 8 * lists
    large_at = starts + 8 * (lists + 1)
    large_values = large_at + 8 * large
    ids = large_values + _padded(4 * large)
    freqs = ids + _padded(total * id_size)
    return _Layout(offsets, starts, large_at, large_values, ids, freqs, freqs + total)


# --------------------------------------------------------------------------- writing


class ArraysWriter:
    """Gathers a segment's posting lists as its postings file is written, then writes its
    ``.lst`` file (:meth:`write`). A writer that cannot give a list (its postings did not decode
    as expected) leaves it out: that list is read from the postings file.

    The postings go to two of the segment's own temporary files as they come (``.lst_ids``,
    ``.lst_freqs``), in their final types: memory holds only each list's offset and count and
    the few large frequencies, whatever the segment's size (the site's 54 million postings
    would otherwise be ~320 MB held by a build until its end). Those files go with the
    segment's if it is never committed (they are named as its files are).
    """

    def __init__(self, folder: Path | str, segment_id: str, doc_count: int) -> None:
        self._path = os.path.join(str(folder), segment_id + EXTENSION)
        self._doc_count = doc_count
        self._id_size = 2 if doc_count <= 1 << 16 else 4
        self._offsets: list[np.ndarray] = []
        self._counts: list[np.ndarray] = []
        self._large_at: list[np.ndarray] = []
        self._large_values: list[np.ndarray] = []
        self._total = 0
        self._ids = open(self._path + "_ids", "wb")  # noqa: SIM115 - closed by write() or discard()
        self._freqs = open(self._path + "_freqs", "wb")  # noqa: SIM115

    def add(self, offsets, counts, ids, freqs) -> None:
        """Lists at ``offsets`` of the postings file, of ``counts`` postings each, whose document
        numbers and frequencies are ``ids`` and ``freqs`` one list after another (written after
        the lists added before)."""
        counts = np.asarray(counts, dtype=np.int64)
        ids = np.asarray(ids)
        freqs = np.asarray(freqs)
        if len(ids) != counts.sum() or len(freqs) != len(ids) or len(offsets) != len(counts):
            raise ValueError(f"{len(offsets)} lists of {counts.sum()} postings given {len(ids)} documents "
                             f"and {len(freqs)} frequencies")
        if not len(counts):
            return
        top = freqs.max() if freqs.size else 0
        fractions = freqs.dtype.kind == "f" and (freqs != np.floor(freqs)).any()
        if fractions or (freqs.size and freqs.min() < 0) or top >= 1 << 32:
            return  # not term frequencies (Whoosh's float weights): read from the postings file
        if ids.size and (ids.min() < 0 or ids.max() >= self._doc_count):
            raise ValueError(f"a posting names a document beyond the segment's {self._doc_count}")
        offsets = np.asarray(offsets, dtype=np.uint64)
        last = self._offsets[-1][-1] if self._offsets else None
        if (last is not None and offsets[0] <= last) or (np.diff(offsets.astype(np.int64)) <= 0).any():
            raise ValueError("posting lists added out of the postings file's order")
        self._offsets.append(offsets)
        self._counts.append(counts)
        (large,) = np.nonzero(freqs >= _LARGE)
        if large.size:
            self._large_at.append(large.astype("<u8") + np.uint64(self._total))
            self._large_values.append(freqs[large].astype("<u4"))
        self._ids.write(ids.astype(_ID_TYPES[self._id_size]).tobytes())
        self._freqs.write(np.minimum(freqs, _LARGE).astype(np.uint8).tobytes())
        self._total += len(ids)

    def write(self) -> int:
        """Write the ``.lst`` file; returns how many lists it holds."""
        offsets = np.concatenate([np.zeros(0, dtype="<u8"), *self._offsets])
        counts = np.concatenate([np.zeros(0, dtype=np.int64), *self._counts])
        starts = np.zeros(len(counts) + 1, dtype="<u8")
        np.cumsum(counts, out=starts[1:])
        at = np.concatenate([np.zeros(0, dtype="<u8"), *self._large_at])
        values = np.concatenate([np.zeros(0, dtype="<u4"), *self._large_values])
        total = self._total
        layout = _layout(len(offsets), total, len(at), self._id_size)
        self._ids.close()
        self._freqs.close()
        with open(self._path, "wb") as out:
            out.write(_HEAD.pack(_MAGIC, len(offsets), total, len(at), self._id_size))
            out.write(offsets.tobytes())
            out.write(starts.tobytes())
            out.write(at.tobytes())
            out.write(values.tobytes())
            out.write(bytes(layout.ids - layout.large_values - 4 * len(values)))
            for part, pad_to in ((self._ids.name, layout.freqs), (self._freqs.name, layout.end)):
                with open(part, "rb") as source:
                    shutil.copyfileobj(source, out, 1 << 20)
                out.write(bytes(pad_to - out.tell()))
        self.discard()
        return len(offsets)

    def discard(self) -> None:
        """Close and delete the temporary files (after :meth:`write`, or for a segment given up)."""
        for part in (self._ids, self._freqs):
            part.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part.name)


def decoded_lists(postings: bytes, extents: Iterable[tuple[int, int]]
                  ) -> tuple[list[int], list[int], np.ndarray, np.ndarray]:
    """(offsets, counts, document numbers, frequencies) of the lists at ``extents`` (offset,
    length) of ``postings`` as :meth:`ArraysWriter.add` takes them; a list that does not decode
    is left out."""
    offsets: list[int] = []
    counts: list[int] = []
    ids: list[np.ndarray] = []
    freqs: list[np.ndarray] = []
    for offset, length in extents:
        arrays = list_arrays(postings[offset:offset + length])
        if arrays is None:
            continue
        offsets.append(offset)
        counts.append(len(arrays[0]))
        ids.append(arrays[0])
        freqs.append(arrays[1])
    if not offsets:
        return offsets, counts, np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.uint32)
    all_ids, all_freqs = np.concatenate(ids), np.concatenate(freqs)
    # Sent from a merge's process to its parent: as four-byte ints when the frequencies are whole
    # numbers (they are, from the service's writer), half the bytes of int64 and float64.
    if all_freqs.min() >= 0 and all_freqs.max() < 1 << 32 and (all_freqs == np.floor(all_freqs)).all():
        return offsets, counts, all_ids.astype(np.uint32), all_freqs.astype(np.uint32)
    return offsets, counts, all_ids, all_freqs


# --------------------------------------------------------------------------- reading


class PostingArrays:
    """The lists of one segment's ``.lst`` file, read through its map by every thread."""

    def __init__(self, offsets: np.ndarray, starts: np.ndarray, ids: np.ndarray, freqs: np.ndarray,
                 large_at: np.ndarray, large_values: np.ndarray) -> None:
        self._offsets = offsets
        self._starts = starts
        self._ids = ids
        self._freqs = freqs
        self._large_at = large_at
        self._large_values = large_values

    def __len__(self) -> int:
        return len(self._offsets)

    def get(self, offset: int, count: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(document numbers, frequencies) of the list at ``offset`` of the postings file, or None
        when this file does not hold it or holds another number of postings than
        the term table says (``count``)."""
        # As a uint64: a Python int would make numpy compare in float64, copying every offset.
        key = np.uint64(offset)
        found = int(self._offsets.searchsorted(key))
        if found == len(self._offsets) or self._offsets[found] != key:
            return None
        start, end = self._starts[found], self._starts[found + 1]
        if end - start != count:
            return None
        freqs = self._freqs[start:end].astype(np.float64)
        large_at = self._large_at
        if large_at.size:
            low, high = large_at.searchsorted(start), large_at.searchsorted(end)
            if low < high:
                freqs[large_at[low:high] - start] = self._large_values[low:high]
        return self._ids[start:end].astype(np.int64), freqs


#: Why the ``.lst`` files of segments were not used, said once per process and reason.
_warned: set[str] = set()


def open_arrays(mapped, doc_count: int, name: str) -> PostingArrays | None:
    """The lists of a ``.lst`` file's bytes (a map), or None, with one warning, when they are not
    laid out as :class:`ArraysWriter` writes them or name a document the segment (``doc_count``
    documents) does not have; the segment's postings file is read then."""
    problem = _problem(mapped, doc_count)
    if isinstance(problem, str):
        if problem not in _warned:
            _warned.add(problem)
            log.warning("%s: %s; its postings are read from the postings file instead", name, problem)
        return None
    return problem


def _problem(mapped, doc_count: int) -> PostingArrays | str:
    size = len(mapped)
    if size < _HEAD.size:
        return f"only {size} bytes, shorter than the header"
    magic, lists, total, large, id_size = _HEAD.unpack_from(mapped)
    if magic != _MAGIC:
        return "not a posting-arrays file of this version (its first bytes differ)"
    if id_size not in _ID_TYPES or max(lists, total, large) > size:
        return "its header is damaged"
    layout = _layout(lists, total, large, id_size)
    if layout.end != size:
        return f"{size} bytes where its header says {layout.end}"
    offsets = np.frombuffer(mapped, dtype="<u8", count=lists, offset=layout.offsets)
    starts = np.frombuffer(mapped, dtype="<u8", count=lists + 1, offset=layout.starts)
    large_at = np.frombuffer(mapped, dtype="<u8", count=large, offset=layout.large_at)
    large_values = np.frombuffer(mapped, dtype="<u4", count=large, offset=layout.large_values)
    ids = np.frombuffer(mapped, dtype=_ID_TYPES[id_size], count=total, offset=layout.ids)
    freqs = np.frombuffer(mapped, dtype=np.uint8, count=total, offset=layout.freqs)
    if starts[0] != 0 or starts[-1] != total or (lists and (
            (np.diff(offsets.astype(np.int64)) <= 0).any() or (np.diff(starts.astype(np.int64)) < 0).any())):
        return "its table of lists is out of order"
    if large and ((np.diff(large_at.astype(np.int64)) <= 0).any() or large_at[-1] >= total
                  or (freqs[large_at] != _LARGE).any() or (large_values < _LARGE).any()):
        return "its table of large frequencies does not match its frequencies"
    if total and int(ids.max()) >= doc_count:
        return f"it names document {int(ids.max())} of a segment of {doc_count}"
    return PostingArrays(offsets, starts, ids, freqs, large_at, large_values)
