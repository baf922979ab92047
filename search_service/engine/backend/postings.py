"""Posting lists of Whoosh 3 segments decoded whole, straight from the postings file.

A W3 posting list (``W3PostingsWriter``) is a 4-byte magic tag, then blocks of up to 128
postings, each ``int32 length (negative on the last block) + pickled info tuple + pickled
(ids, weights, values) tuple``; ids are delta-coded per block, weights are ``None`` (all 1),
one float (all equal) or a sequence, values are ``Positions.encode`` byte strings (a 4-byte
count and a pickled tuple of position deltas) or ``None``.

Whoosh's ``W3LeafMatcher`` reads a block through four method calls and a Python generator
per posting (``delta_decode``); a search at the site's scale decodes ~100,000 postings, and
that generator was a quarter of its time. Here a whole list is read in one pass: every
block's tuples unpickled from one buffer by one unpickler, ids summed by numpy, and for
phrase checks only the blocks that hold the wanted documents have their positions decoded.

Both readers answer ``None`` when the bytes are not what they expect (another codec, a
compressed or byte-id block); the caller then takes Whoosh's matcher (the slow path).
"""

from __future__ import annotations

import io
import pickle
import re
import zlib
from collections.abc import Iterable
from itertools import accumulate

import numpy as np
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC

__all__ = ["decode_positions", "list_arrays", "list_positions"]

_MAGIC_SIZE = len(WHOOSH3_HEADER_MAGIC)


# The start of a block's data tuple as engine/backend/segments.py writes it: the ids, then the
# weights, each a tuple of plain ints (K: one byte, M: two, J: four) or, for weights, N (all 1).
# Unpickling only that much, as a 2-tuple, skips building a bytes object per posting for the
# positions (most of a bigram field's block) when only documents and frequencies are wanted.
_INT_OPS = rb"(?:K.|M..|J....)"
_INT_TUPLE = re.compile(rb"\(" + _INT_OPS + rb"*t|" + _INT_OPS + rb"{1,3}[\x85\x86\x87]", re.S)
_WEIGHTS = re.compile(rb"N|\(" + _INT_OPS + rb"*t|" + _INT_OPS + rb"{1,3}[\x85\x86\x87]", re.S)
_TUPLE2_STOP = b"\x86."


def _ids_and_weights(view: memoryview, data: bytes, start: int, end: int, count: int) -> tuple | None:
    """(ids, weights) of a block's data at ``start`` without its values, or None when the data is
    not laid out as the service's writer lays it out (then the whole tuple is unpickled)."""
    ids = _INT_TUPLE.match(data, start, end)
    if ids is None:
        return None
    weights = _WEIGHTS.match(data, ids.end(), end)
    if weights is None:
        return None
    found = pickle.loads(bytes(view[start:weights.end()]) + _TUPLE2_STOP)
    if len(found[0]) != count or (found[1] is not None and len(found[1]) != count):
        return None
    return found


def _blocks(data: bytes, values: bool = True) -> Iterable[tuple[tuple, tuple] | None]:
    """(info, (ids, weights, values)) of every block of a posting list's bytes; None on a surprise.

    ``values=False``: the blocks' values may be left out (the tuple is then (ids, weights)).
    """
    if data[:_MAGIC_SIZE] != WHOOSH3_HEADER_MAGIC:
        yield None
        return
    # The info tuple is read through a file (to learn where it ends); the block's data, the
    # bulk, straight from memory (an unpickler over a file calls read() per opcode).
    stream = io.BytesIO(data)
    load_info = pickle.Unpickler(stream).load
    view = memoryview(data)
    position = _MAGIC_SIZE
    end = len(data)
    while position + 4 <= end:
        size = int.from_bytes(view[position:position + 4], "big", signed=True)
        position += 4
        last = size < 0
        block_end = position + abs(size)
        stream.seek(position)
        info = load_info()
        start = stream.tell()
        if info[3]:  # zlib-compressed block data (Whoosh's writer with compression on)
            block = pickle.loads(zlib.decompress(view[start:block_end]))
        else:
            block = None if values else _ids_and_weights(view, data, start, block_end, info[0])
            if block is None:
                block = pickle.loads(view[start:block_end])
        yield info, block
        position = block_end
        if last:
            return
    yield None  # ran off the end without a last block


def _weights_of(weights, count: int) -> list | np.ndarray:
    if weights is None:
        return [1] * count
    if isinstance(weights, float):
        return [weights] * count
    return weights


def list_arrays(data: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """(document numbers, weights) of a whole posting list's bytes, or None when not W3 as expected."""
    deltas: list[int] = []
    weights: list = []
    starts: list[int] = []
    for found in _blocks(data, values=False):
        if found is None:
            return None
        info, block = found
        ids = block[0]
        if not isinstance(ids, (tuple, list)) and not hasattr(ids, "typecode"):
            return None  # byte ids (term vectors), not document numbers
        starts.append(len(deltas))
        deltas.extend(ids)
        weights.extend(_weights_of(block[1], info[0]))
    if not deltas:
        return None
    summed = np.cumsum(np.array(deltas, dtype=np.int64))
    if len(starts) > 1:
        # Each block's deltas start from 0 again: subtract what the blocks before it summed to.
        bounds = np.array(starts + [len(deltas)])
        carried = np.concatenate(([0], summed[bounds[1:-1] - 1]))
        summed -= np.repeat(carried, np.diff(bounds))
    return summed, np.array(weights, dtype=np.float64)


def decode_positions(value: bytes) -> list[int]:
    """The positions ``Positions.encode`` stored in ``value`` (a count, then pickled deltas)."""
    deltas = pickle.loads(value[4:] if value.endswith(b".") else value[4:] + b".")
    return list(accumulate(deltas))


def list_positions(data: bytes, docnums: list[int]) -> dict[int, list[int]] | None:
    """Positions of the term in each of ``docnums`` (ascending) that has it; None when the
    bytes are not a W3 posting list with positions. Blocks holding none of ``docnums`` are
    skipped by their info tuple (its last id) without reading their postings."""
    found: dict[int, list[int]] = {}
    wanted = iter(docnums)
    target = next(wanted, None)
    if target is None:
        return found
    for item in _blocks(data):
        if item is None:
            return None
        info, block = item
        if info[1] < target:  # the block's last id: nothing wanted in it
            continue
        ids, values = block[0], block[2]
        if not isinstance(values, (tuple, list)):
            return None  # no positions stored
        for docnum, value in zip(accumulate(ids), values):
            while target is not None and target < docnum:
                target = next(wanted, None)
            if target is None:
                return found
            if docnum == target:
                found[docnum] = decode_positions(value)
    return found
