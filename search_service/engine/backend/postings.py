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
writer is not unpickled at all: each block's one-byte ints are sliced out of its bytes and read
by numpy for all blocks at once (:func:`_list_arrays_sliced`, 4.8 times faster at 128 KB).

Both readers answer ``None`` when the bytes are not what they expect (another codec, a
compressed or byte-id block); the caller then takes Whoosh's matcher (the slow path).
"""

from __future__ import annotations

import io
import pickle
import re
import zlib
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from itertools import accumulate, chain

import numpy as np
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC

__all__ = ["decode_position_lists", "decode_positions", "list_arrays", "list_position_values"]

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
#: Lists shorter than this are cheaper to unpickle whole than to slice block by block (measured at
#: 42k articles: even near 8 KB; 2.5-4.8x faster from 16 KB to 128 KB, the frequent terms a search
#: spends its time on).
SLICED_MIN_BYTES = 8192


def list_arrays(data: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """(document numbers, weights) of a whole posting list's bytes, or None when not W3 as expected."""
    if len(data) >= SLICED_MIN_BYTES:
        found = _list_arrays_sliced(data)
    else:
        found = _list_arrays_joined(data)
    if found is not None:
        return found
    return _list_arrays_unpickled(data)


def _list_arrays_joined(data: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`list_arrays` for a short list of the service's own blocks: every block's ids and
    weights unpickled by one ``pickle.loads`` of their bytes side by side.

    A short list (a title word, a rare bigram) is often several short blocks (the build's merge
    keeps each segment's blocks), and unpickling block by block cost a few microseconds per
    block in calls alone. Each block's info tuple is not unpickled: its layout is fixed (see
    :func:`_sliced_block`), so its count and where its data starts are read from its bytes.
    None when a block is laid out otherwise (compressed, Whoosh's own writer).
    """
    extents = _block_extents(data)
    if extents is None:
        return None
    parts: list[bytes] = []
    counts: list[int] = []
    for head, block_end in extents:
        start = _data_start(data, head, block_end)
        if start is None:
            return None
        ids = _INT_TUPLE.match(data, start, block_end)
        weights = _WEIGHTS.match(data, ids.end(), block_end) if ids is not None else None
        if weights is None:
            return None
        parts.append(data[start:weights.end()])
        counts.append(data[head + 2])
    found = pickle.loads(b"(" + b"".join(parts) + b"t.")
    if len(found) != 2 * len(counts):
        return None
    deltas: list[int] = []
    weights_out: list = []
    for block, count in enumerate(counts):
        block_ids, block_weights = found[2 * block], found[2 * block + 1]
        if len(block_ids) != count or (block_weights is not None and len(block_weights) != count):
            return None
        deltas.extend(block_ids)
        weights_out.extend(_weights_of(block_weights, count))
    return _summed_per_block(np.array(deltas, dtype=np.int64), counts), np.array(weights_out, dtype=np.float64)


_OP_SIZE = {_K: 2, _M: 3, _J: 5}  # an int opcode's size with its argument
_ONE_BYTE_OPS = b"K" * 256  # a run of "K x" pairs, seen at every other byte
_ALL_ONES = b"\x01" * 256  # the frequencies of a block whose weights are all 1 (N)


def _block_extents(data: bytes) -> list[tuple[int, int]] | None:
    """(start, end) of every block of a W3 posting list's bytes, after each block's 4-byte size;
    None when the bytes are no W3 list or run off their end."""
    if data[:_MAGIC_SIZE] != WHOOSH3_HEADER_MAGIC:
        return None
    end = len(data)
    position = _MAGIC_SIZE
    extents = []
    while True:
        if position + 4 > end:
            return None
        size = int.from_bytes(data[position:position + 4], "big", signed=True)
        head = position + 4
        block_end = head + (-size if size < 0 else size)
        if block_end > end or head + 4 > block_end:
            return None
        extents.append((head, block_end))
        if size < 0:  # the last block
            return extents
        position = block_end


def _data_start(data: bytes | memoryview, head: int, block_end: int) -> int | None:
    """Where the (ids, weights, values) tuple of the block at ``head`` starts, when its info tuple is
    laid out as the service's writer lays it out, uncompressed (see above :data:`SLICED_MIN_BYTES`);
    None for any other layout."""
    if data[head] != _MARK_B or data[head + 1] != _K:
        return None
    id_size = _OP_SIZE.get(data[head + 3])
    if id_size is None:
        return None
    start = head + 20 + id_size  # after "(K<count>", the last id, G + 8 bytes, "K\x00", 4 bytes, "t."
    if (start + 1 >= block_end or data[start - 17] != _FLOAT_B or data[start - 8] != _K or data[start - 7] != 0
            or data[start - 2] != _TUPLE_B or data[start - 1] != _STOP_B):
        return None
    return start


def _summed_per_block(deltas: np.ndarray, sizes: Sequence[int] | np.ndarray) -> np.ndarray:
    """Document numbers from their delta-coded ids, block after block of ``sizes``: each block's
    deltas start from 0 again (its first id is absolute). ``deltas`` is changed in place."""
    if len(sizes) > 1:
        counts = np.asarray(sizes, dtype=np.int64)
        counts = counts[counts > 0]  # an empty block (Whoosh writes none) holds no delta
        if counts.size > 1:
            # A block's deltas sum to its last id: taking the previous block's last id off each
            # block's (absolute) first id makes one delta stream, summed in one pass.
            starts = counts.cumsum() - counts
            last_ids = np.add.reduceat(deltas, starts)
            deltas[starts[1:]] -= last_ids[:-1]
    return deltas.cumsum()


def _list_arrays_sliced(data: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`list_arrays` for a list of the service's own blocks, each read by slicing its bytes.

    Each block's one-byte deltas and frequencies are every other byte of a run ("K x K y ..."):
    a slice with a step of 2 takes them in C, where unpickling built an int object per posting
    (lists the block-copying merge left in many short blocks paid that per block). The blocks'
    bytes go to numpy together. A block laid out another way (wider ints, three postings or
    fewer) is unpickled on its own; None when the bytes are no W3 list or a block is compressed
    (the caller then unpickles the list).
    """
    extents = _block_extents(data)
    if extents is None:
        return None
    view = memoryview(data)
    firsts: list[int] = []
    counts: list[int] = []
    deltas: list[bytes] = []
    weights: list[bytes | None] = []
    unpickled: list[tuple[int, Sequence, Sequence | np.ndarray]] = []  # (block, ids, weights): other layouts
    for head, block_end in extents:
        found = _sliced_block(data, head, block_end)
        if found is None:
            stream = io.BytesIO(data)
            stream.seek(head)
            info = pickle.Unpickler(stream).load()
            if info[3]:
                return None  # compressed: left to the unpickling reader
            start = stream.tell()
            block = _ids_and_weights(view, data, start, block_end, info[0]) or pickle.loads(view[start:block_end])
            ids = block[0]
            if not isinstance(ids, (tuple, list)) or len(ids) != info[0] or not ids:
                return None
            unpickled.append((len(counts), ids, _weights_of(block[1], info[0])))
            found = (ids[0], len(ids), bytes(len(ids) - 1), None)  # placeholders, replaced below
        first, count, block_deltas, block_weights = found
        firsts.append(first)
        counts.append(count)
        deltas.append(block_deltas)
        weights.append(block_weights)
    sizes = np.array(counts, dtype=np.int64)
    starts = np.cumsum(sizes) - sizes  # each block's first slot
    total = int(sizes.sum())
    ids_out = np.empty(total, dtype=np.int64)
    later = np.ones(total, dtype=bool)
    later[starts] = False
    ids_out[starts] = firsts
    ids_out[later] = np.frombuffer(b"".join(deltas), dtype=np.uint8)
    if all(w is None for w in weights):
        weights_out = np.ones(total, dtype=np.float64)
    else:
        joined = b"".join(_ALL_ONES[:counts[i]] if w is None else w for i, w in enumerate(weights))
        weights_out = np.frombuffer(joined, dtype=np.uint8).astype(np.float64)
    for block, block_ids, block_freqs in unpickled:
        ids_out[starts[block]:starts[block] + len(block_ids)] = block_ids
        weights_out[starts[block]:starts[block] + len(block_ids)] = block_freqs
    return _summed_per_block(ids_out, sizes), weights_out


def _sliced_block(data: bytes, head: int, block_end: int) -> tuple[int, int, bytes, bytes | None] | None:
    """(first id, count, one-byte deltas, one-byte frequencies or None for all 1) of the block at
    ``head`` as the service's writer lays out more than three postings (see the layout above
    :data:`SLICED_MIN_BYTES`); None for any other layout."""
    count = data[head + 2]
    start = _data_start(data, head, block_end)
    if start is None or count <= 3 or start + 2 >= block_end or data[start] != _MARK_B:
        return None
    first_op = data[start + 1]
    first_size = _OP_SIZE.get(first_op)
    if first_size is None:
        return None
    first = int.from_bytes(data[start + 2:start + 1 + first_size], "little", signed=first_op == _J)
    run = start + 1 + first_size
    after = run + 2 * (count - 1)
    if after >= block_end or data[after] != _TUPLE_B or data[run:after:2] != _ONE_BYTE_OPS[:count - 1]:
        return None
    weights_at = after + 1
    if data[weights_at] == _NONE_B:
        return first, count, data[run + 1:after:2], None
    weights_end = weights_at + 1 + 2 * count
    if (data[weights_at] != _MARK_B or weights_end >= block_end or data[weights_end] != _TUPLE_B
            or data[weights_at + 1:weights_end:2] != _ONE_BYTE_OPS[:count]):
        return None
    return first, count, data[run + 1:after:2], data[weights_at + 2:weights_end:2]


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
    sizes = np.diff(np.array(starts + [len(deltas)]))
    return _summed_per_block(np.array(deltas, dtype=np.int64), sizes), np.array(weights, dtype=np.float64)


def decode_positions(value: bytes) -> list[int]:
    """The positions ``Positions.encode`` stored in ``value`` (a count, then pickled deltas)."""
    deltas = pickle.loads(value[4:] if value.endswith(b".") else value[4:] + b".")
    return list(accumulate(deltas))


def decode_position_lists(values: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """(how many positions each value holds, all their positions in order) for ``Positions.encode``
    values: the pickled deltas of every value read by one unpickling, summed by numpy.

    A value's pickle (after its 4-byte count) is one tuple or list; side by side between a
    mark and a tuple opcode they unpickle as a tuple of them. Whatever does not come out
    as one sequence per value is decoded value by value.
    """
    bodies = [value[4:-1] if value.endswith(b".") else value[4:] for value in values]
    try:
        deltas = pickle.loads(b"(" + b"".join(bodies) + b"t.")
    except Exception:  # a layout that does not join (another writer's memo, say): one by one
        deltas = None
    if deltas is None or len(deltas) != len(values):
        deltas = [pickle.loads(body + b".") for body in bodies]
    counts = np.fromiter(map(len, deltas), dtype=np.int64, count=len(deltas))
    flat = np.fromiter(chain.from_iterable(deltas), dtype=np.int64, count=int(counts.sum()))
    summed = np.cumsum(flat)
    if len(counts) > 1:
        # Each value's deltas start from 0 again: subtract what the values before it summed to.
        before = np.concatenate(([0], summed))[np.cumsum(counts) - counts]
        summed -= np.repeat(before, counts)
    return counts, summed


def list_position_values(data: bytes | memoryview, docnums: list[int]) -> tuple[list[int], list[bytes]] | None:
    """Those of ``docnums`` (ascending) that have the term, and the positions value of each (see
    :func:`decode_position_lists`); None when the bytes are not a W3 posting list with positions.

    A phrase verifies a few hundred candidates against terms in thousands of documents: a
    block holding none of them is passed by its info tuple (its last id) without unpickling
    its postings, and in a block that holds some, each is found by bisection in the block's
    ids rather than by walking all of its postings. ``data`` may be a view of the mapped
    postings file: a block's info tuple is read from its bytes when the service's writer laid
    it out (see :func:`_data_start`), so nothing but the blocks decoded is copied (a frequent
    word's list is hundreds of kilobytes; copied whole, it cost more than the blocks read).
    """
    found_docs: list[int] = []
    found_values: list[bytes] = []
    count = len(docnums)
    if not count:
        return found_docs, found_values
    view = memoryview(data)
    if view[:_MAGIC_SIZE] != WHOOSH3_HEADER_MAGIC:
        return None
    position = _MAGIC_SIZE
    end = len(view)
    next_wanted = 0  # index in docnums of the first one not yet looked for
    while position + 4 <= end:
        size = int.from_bytes(view[position:position + 4], "big", signed=True)
        head = position + 4
        block_end = head + abs(size)
        start = _data_start(view, head, block_end) if block_end <= end else None
        if start is not None:
            last_id, compressed = _info_last_id(view, head), False
        else:  # another layout: the info tuple unpickled from the block's own bytes
            stream = io.BytesIO(view[head:block_end])
            info = pickle.Unpickler(stream).load()
            last_id, compressed, start = info[1], info[3], head + stream.tell()
        if docnums[next_wanted] <= last_id:
            raw = view[start:block_end]
            block = pickle.loads(zlib.decompress(raw) if compressed else raw)
            values = block[2]
            if not isinstance(values, (tuple, list)):
                return None  # no positions stored
            ids = list(accumulate(block[0]))
            while next_wanted < count and docnums[next_wanted] <= last_id:
                target = docnums[next_wanted]
                at = bisect_left(ids, target)
                if at < len(ids) and ids[at] == target:
                    found_docs.append(target)
                    found_values.append(values[at])
                next_wanted += 1
            if next_wanted == count:
                return found_docs, found_values
        position = block_end
        if size < 0:
            return found_docs, found_values
    return None  # ran off the end without a last block


def _info_last_id(data: bytes | memoryview, head: int) -> int:
    """The last id of the block at ``head``, from its info tuple's bytes (a layout
    :func:`_data_start` accepted: "(K<count>" then the id as K, M or J)."""
    op = data[head + 3]
    size = _OP_SIZE[op] - 1
    return int.from_bytes(data[head + 4:head + 4 + size], "little", signed=op == _J)
