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
A long list (a frequent term: most of a search's decoding) written by the service's own
writer is not unpickled at all: its one-byte ints are read for all blocks at once with numpy
(:func:`_list_arrays_vectorized`, 3.5 times faster at 128 KB).

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


# A block as engine/backend/segments.py writes it (_block_info, _int_tuple): the info tuple
# "( K<count> <last id> G<8 bytes> K\x00 K<min> K<max> t ." (no compression), then the ids tuple
# "( <first id> K<delta> ... t" and the weights "N" (all 1) or "( K<freq> ... t".
_K, _M, _J, _MARK_B, _TUPLE_B, _NONE_B, _FLOAT_B, _STOP_B = 0x4B, 0x4D, 0x4A, 0x28, 0x74, 0x4E, 0x47, 0x2E
#: The size of an int opcode with its argument, by opcode byte (0: not an int opcode).
_OP_WIDTH = np.zeros(256, dtype=np.int64)
_OP_WIDTH[[_K, _M, _J]] = (2, 3, 5)
#: Lists shorter than this are cheaper to unpickle than to set up the arrays below for (measured at
#: 42k articles: even at 16 KB; 3.5x faster at 128 KB, the frequent terms a search spends its time on).
VECTOR_MIN_BYTES = 16384


def list_arrays(data: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """(document numbers, weights) of a whole posting list's bytes, or None when not W3 as expected."""
    if len(data) >= VECTOR_MIN_BYTES:
        found = _list_arrays_vectorized(data)
        if found is not None:
            return found
    return _list_arrays_unpickled(data)


def _list_arrays_vectorized(data: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`list_arrays` reading the service's own blocks with numpy, all blocks at once.

    Only the walk from block to block (each one's length) is a Python loop; the layout checks,
    the first ids and the one-byte ``K`` deltas and frequencies (nearly all of them) are read
    for every block together. A block laid out any other way (``M`` or ``J`` ints past the first
    id, three postings or fewer, Whoosh's own writer) is unpickled on its own, as before. None
    when the bytes are no W3 posting list, or when one-byte ints turn out not to be (the caller
    then unpickles the whole list).
    """
    if data[:_MAGIC_SIZE] != WHOOSH3_HEADER_MAGIC:
        return None
    end = len(data)
    view = memoryview(data)
    heads: list[int] = []  # where each block's info tuple starts
    ends: list[int] = []
    position = _MAGIC_SIZE
    while True:
        if position + 4 > end:
            return None  # ran off the end without a last block
        size = int.from_bytes(view[position:position + 4], "big", signed=True)
        position += 4
        heads.append(position)
        position += -size if size < 0 else size
        ends.append(position)
        if size < 0:
            break
    if position > end:
        return None
    raw = np.frombuffer(data, dtype=np.uint8)
    head = np.array(heads, dtype=np.int64)
    stop = np.array(ends, dtype=np.int64)
    last = int(raw.size) - 1

    def at(offsets: np.ndarray) -> np.ndarray:
        return raw[np.minimum(offsets, last)]  # a malformed block must fail a check, not index past the end

    count = at(head + 2).astype(np.int64)
    id_width = _OP_WIDTH[at(head + 3)]
    start = head + 20 + id_width  # the data tuple, after the info tuple
    first_op = at(start + 1)
    first_width = _OP_WIDTH[first_op]
    run = start + 1 + first_width  # the first "K x" pair of the deltas
    after = run + 2 * (count - 1)
    weights_at = after + 1
    all_ones = at(weights_at) == _NONE_B
    weights_end = weights_at + 1 + 2 * count
    fast = ((at(head) == _MARK_B) & (at(head + 1) == _K) & (count > 3) & (id_width > 0)
            & (at(start - 17) == _FLOAT_B) & (at(start - 8) == _K) & (at(start - 7) == 0)  # not compressed
            & (at(start - 2) == _TUPLE_B) & (at(start - 1) == _STOP_B) & (at(start) == _MARK_B)
            & (first_width > 0) & (after < stop) & (at(after) == _TUPLE_B)
            & (all_ones | ((at(weights_at) == _MARK_B) & (weights_end < stop) & (at(weights_end) == _TUPLE_B))))
    slow = np.flatnonzero(~fast).tolist()
    slow_blocks = []
    for block in slow:  # unpickled: the info tuple to learn its count and where the data starts
        stream = io.BytesIO(data)
        stream.seek(heads[block])
        info = pickle.Unpickler(stream).load()
        data_start = stream.tell()
        if info[3]:
            return None  # compressed: left to the unpickling reader
        found = _ids_and_weights(view, data, data_start, ends[block], info[0])
        if found is None:
            found = pickle.loads(view[data_start:ends[block]])
        if not isinstance(found[0], (tuple, list)) or len(found[0]) != info[0]:
            return None
        count[block] = info[0]
        slow_blocks.append((found[0], _weights_of(found[1], info[0])))
    total = int(count.sum())
    if not total:
        return None
    out = np.cumsum(count) - count  # each block's first slot in the output
    deltas = np.empty(total, dtype=np.int64)
    weights = np.ones(total, dtype=np.float64)
    fast_blocks = np.flatnonzero(fast)
    if fast_blocks.size:
        # The first id of each block: K (one byte), M (two, little-endian) or J (four, signed).
        op, at_first = first_op[fast_blocks], start[fast_blocks] + 2
        first = at(at_first).astype(np.int64)
        wide = op != _K
        first[wide] += at(at_first[wide] + 1).astype(np.int64) << 8
        very = op == _J
        first[very] += (at(at_first[very] + 2).astype(np.int64) << 16) + (at(at_first[very] + 3).astype(np.int64) << 24)
        first[very & (first >= 1 << 31)] -= 1 << 32
        deltas[out[fast_blocks]] = first
        # Every "K x" pair after the first id: its output slot and the offset of its opcode.
        rest = count[fast_blocks] - 1
        block_of = np.repeat(fast_blocks, rest)
        within = np.arange(int(rest.sum())) - np.repeat(np.cumsum(rest) - rest, rest)
        offsets = run[block_of] + 2 * within
        if not (raw[offsets] == _K).all():
            return None  # an M or J delta: the unpickling reader reads the whole list
        deltas[out[block_of] + 1 + within] = raw[offsets + 1]
        weighted = fast_blocks[~all_ones[fast_blocks]]
        if weighted.size:
            sized = count[weighted]
            block_w = np.repeat(weighted, sized)
            within_w = np.arange(int(sized.sum())) - np.repeat(np.cumsum(sized) - sized, sized)
            w_offsets = weights_at[block_w] + 1 + 2 * within_w
            if not (raw[w_offsets] == _K).all():
                return None  # a frequency of 256 or more
            weights[out[block_w] + within_w] = raw[w_offsets + 1]
    for block, (ids, block_weights) in zip(slow, slow_blocks):
        deltas[out[block]:out[block] + len(ids)] = ids
        weights[out[block]:out[block] + len(ids)] = block_weights
    # Each block's deltas start from 0 again: a cumulative sum per block.
    summed = np.cumsum(deltas)
    if len(heads) > 1:
        carried = np.concatenate(([0], summed[out[1:] - 1]))
        summed -= np.repeat(carried, count)
    return summed, weights


def _list_arrays_unpickled(data: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`list_arrays` unpickling every block (any W3 layout)."""
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
