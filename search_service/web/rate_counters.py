"""Rate-limit counters shared by the worker processes of ``serve``: a fixed table in one small file.

``search-service-counters:///path/to/file``. The workers of ``serve --workers N`` must count a
client once, not once per process, and ``limits`` ships shared storages only for servers
(Redis, Memcached, MongoDB). This one needs nothing but the run folder:

* **A fixed table.** The file is a 64-byte header and :data:`SLOTS` slots of 32 bytes (1 MiB,
  allocated when made): a slot holds a key's hash, its sliding window (the window's number, this
  window's count and the previous one's) and when it was last touched. A key lives in one run
  of :data:`PROBE` slots chosen by its hash; a new key takes an empty slot of its run, else the
  one touched longest ago. The file never grows, so nothing needs sweeping.
* **One check-and-count per request, at the cost of a few system calls.** Under this process's
  thread lock and an ``flock`` of the file (no other worker counts in between): read the
  header and the key's run (``pread``), write its slot (``pwrite``). No memory map: a file
  truncated under a map kills the process (SIGBUS) at the next access; a short read is only
  a damaged file. The SQLite file this replaces took twice as long alone and, served, about
  0.15 ms of every request, with its write-ahead log's checkpoints in the tail.
* **A damaged file repairs itself.** The counters are worth nothing after the moment: a header
  that is not this format's (overwritten, any other file) or a table cut short (truncated)
  makes the first operation that meets it start the table again, in place, under the file
  lock, once for all workers (:attr:`CounterFileStorage.repairs`; the log says ``counts
  restart``). A file deleted or replaced is reopened by path within a second. When the file
  cannot be opened or written at all (a folder where it should be, a full disk), the
  operation raises: :class:`limits.RateLimiter` then counts in this process's memory and asks
  :meth:`CounterFileStorage.check` now and then whether the file works again;
  :attr:`CounterFileStorage.problem` says what is wrong meanwhile (``/healthz`` and
  ``/metrics`` show it).

Two keys whose runs are full of live clients evict the oldest: that client's count restarts
(lenient, never a false refusal). Hashes are BLAKE2b of the key, the same in every process.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import math
import os
import struct
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from limits.storage import Storage
from limits.storage.base import SlidingWindowCounterSupport

log = logging.getLogger(__name__)

R = TypeVar("R")

MAGIC = b"search-service rate counters v1\n"
HEADER_SIZE = 64
#: Slots in the table (a power of two) and how many consecutive slots a key may live in.
SLOTS = 1 << 15
PROBE = 16
#: hash (0: empty), window number (or expiry time in ms for plain counters), count, previous
#: window's count, last touched (whole seconds since the epoch).
_SLOT = struct.Struct("<QqIII4x")
SLOT_SIZE = _SLOT.size
FILE_SIZE = HEADER_SIZE + SLOTS * SLOT_SIZE
_HEADER = MAGIC + struct.pack("<II", SLOTS, SLOT_SIZE)
_MAX_COUNT = 0xFFFFFFFF


def key_hash(key: str) -> int:
    """A non-zero 64-bit hash of ``key``, the same in every process (``hash()`` is salted per process)."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little") | 1


class _ShortTable(Exception):
    """The file ends inside the table (truncated after its header)."""


class _Slot:
    """One slot as read: where it is and what it holds."""

    __slots__ = ("offset", "hash", "window", "count", "previous", "touched")

    def __init__(self, offset: int, raw: bytes) -> None:
        self.offset = offset
        self.hash, self.window, self.count, self.previous, self.touched = _SLOT.unpack(raw)

    def write(self, fd: int) -> None:
        raw = _SLOT.pack(self.hash, self.window, min(self.count, _MAX_COUNT), min(self.previous, _MAX_COUNT),
                         self.touched)
        if os.pwrite(fd, raw, self.offset) != SLOT_SIZE:
            raise OSError(f"short write to the rate-limit counters at byte {self.offset}")


class CounterFileStorage(Storage, SlidingWindowCounterSupport):
    """``limits`` storage in one file shared by processes (see the module docstring)."""

    STORAGE_SCHEME = ["search-service-counters"]
    RECHECK_SECONDS = 1.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options) -> None:
        self.path = (uri or "").split("://", 1)[-1]
        if not self.path:
            raise ValueError("search-service-counters:// needs a file path, e.g. search-service-counters:///tmp/rate")
        self._lock = threading.Lock()
        self._open: tuple[int, int, int, float] | None = None  # (pid, descriptor, inode, checked at)
        #: Why the file cannot be used right now (None while it works).
        self.problem: str | None = None
        #: Damaged files started again by this process.
        self.repairs = 0
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        # Made (or repaired) at start; a worker starts even when the file cannot be used (it
        # counts in memory until it can), rather than die and be replaced in a loop.
        self.check()

    @property
    def base_exceptions(self):
        return OSError

    # -- the file ---------------------------------------------------------------------------

    def _descriptor(self) -> int:
        """The file's descriptor in this process (called under the thread lock): opened again in
        a forked child (a lock taken through the parent's descriptor would be the parent's), and
        when the path names another file or none (deleted, replaced), checked at most every
        :attr:`RECHECK_SECONDS` (a ``stat`` per request was a tenth of this storage's time)."""
        held = self._open
        if held is not None:
            pid, fd, known, checked = held
            if pid == os.getpid():
                now = time.monotonic()
                if now - checked < self.RECHECK_SECONDS:
                    return fd
                try:
                    if os.stat(self.path).st_ino == known:
                        self._open = (pid, fd, known, now)
                        return fd
                except FileNotFoundError:
                    pass
            self._open = None
            os.close(fd)
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._open = (os.getpid(), fd, os.fstat(fd).st_ino, time.monotonic())
        return fd

    def _run(self, work: Callable[[int, float], R]) -> R:
        """``work(descriptor, now)`` holding the table alone; the table made or repaired first.

        Raises OSError (after noting :attr:`problem`) when the file cannot be used.
        """
        with self._lock:
            try:
                fd = self._descriptor()
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    if os.pread(fd, len(_HEADER), 0) != _HEADER:
                        self._start_again(fd)
                    try:
                        result = work(fd, time.time())
                    except _ShortTable:  # cut after its header: started again, then counted
                        self._start_again(fd)
                        result = work(fd, time.time())
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            except OSError as exc:
                if self.problem is None:
                    log.warning("rate-limit counters in %s cannot be used (%s); each worker counts on its own "
                                "until they can", self.path, exc)
                self.problem = f"{type(exc).__name__}: {exc}"
                raise
        if self.problem is not None:
            log.warning("rate-limit counters in %s work again; counting across workers", self.path)
            self.problem = None
        return result

    def _start_again(self, fd: int) -> None:
        """An empty table in place of whatever the file holds (under the file lock)."""
        size = os.fstat(fd).st_size
        os.ftruncate(fd, 0)
        try:
            os.posix_fallocate(fd, 0, FILE_SIZE)  # the whole table now: a full disk fails here, not mid-count
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise
            os.ftruncate(fd, FILE_SIZE)  # a file system without fallocate: the table as a sparse file
        if os.pwrite(fd, _HEADER, 0) != len(_HEADER):
            raise OSError("short write of the rate-limit counters' header")
        if size:
            self.repairs += 1
            log.warning("rate-limit counters: %s was not a counters file (%d bytes); started a new table "
                        "(counts restart)", self.path, size)

    def _slot(self, fd: int, key: str, now: float) -> _Slot:
        """The slot of ``key``: its own, else a free or the least recently touched one of its
        run, emptied and claimed (written by the caller)."""
        wanted = key_hash(key)
        first = (wanted >> 16) % (SLOTS - PROBE + 1)
        start = HEADER_SIZE + first * SLOT_SIZE
        run = os.pread(fd, PROBE * SLOT_SIZE, start)
        if len(run) != PROBE * SLOT_SIZE:
            raise _ShortTable
        found = run.find(wanted.to_bytes(8, "little"))
        while found >= 0 and found % SLOT_SIZE:  # the bytes inside another field: look further
            found = run.find(wanted.to_bytes(8, "little"), found + 1)
        if found >= 0:
            return _Slot(start + found, run[found:found + SLOT_SIZE])
        slots = [_Slot(start + i, run[i:i + SLOT_SIZE]) for i in range(0, len(run), SLOT_SIZE)]
        # A free slot if there is one, else the one touched longest ago.
        victim = min(slots, key=lambda slot: (slot.hash != 0, slot.touched))
        victim.hash, victim.window, victim.count, victim.previous = wanted, 0, 0, 0
        victim.touched = int(now)
        return victim

    # -- sliding windows (what the rate limit uses) -----------------------------------------

    @staticmethod
    def _rolled(slot: _Slot, window: int) -> tuple[int, int]:
        """(previous window's count, this window's count) of ``slot`` at window number ``window``."""
        if slot.window == window:
            return slot.previous, slot.count
        if slot.window == window - 1:
            return slot.count, 0
        return 0, 0  # older, or a window in the future (a clock set back, a damaged slot)

    def acquire_sliding_window_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Check and count in one step under the locks: no other worker or thread counts in between.

        The weighted count is limits' sliding window: the previous window's count, scaled by how
        much of it still overlaps the last ``expiry`` seconds, plus the current one's.
        """
        if amount > limit:
            return False

        def work(fd: int, now: float) -> bool:
            window, into = divmod(now, expiry)
            slot = self._slot(fd, key, now)
            previous, current = self._rolled(slot, int(window))
            weighted = previous * (1 - into / expiry) + current
            if math.floor(weighted) + amount > limit:
                return False
            slot.window, slot.previous, slot.count, slot.touched = int(window), previous, current + amount, int(now)
            slot.write(fd)
            return True

        return self._run(work)

    def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        def work(fd: int, now: float) -> tuple[int, float, int, float]:
            window, into = divmod(now, expiry)
            previous, current = self._rolled(self._slot(fd, key, now), int(window))
            left = expiry - into  # of the current window
            return previous, (left if previous else 0.0), current, left + expiry

        return self._run(work)

    def clear_sliding_window(self, key: str, expiry: int) -> None:
        self.clear(key)

    # -- plain counters (the rest of limits' Storage interface) -----------------------------

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        def work(fd: int, now: float) -> int:
            slot = self._slot(fd, key, now)
            now_ms = int(now * 1000)
            if slot.window <= now_ms:  # expired (or new): a fresh count
                slot.window, slot.count = now_ms + int(expiry * 1000), 0
            slot.count += amount
            slot.touched = int(now)
            slot.write(fd)
            return slot.count

        return self._run(work)

    def _live(self, key: str) -> tuple[int, float] | None:
        def work(fd: int, now: float) -> tuple[int, float] | None:
            slot = self._slot(fd, key, now)
            return (slot.count, slot.window / 1000) if slot.window > now * 1000 else None

        return self._run(work)

    def get(self, key: str) -> int:
        live = self._live(key)
        return live[0] if live else 0

    def get_expiry(self, key: str) -> float:
        live = self._live(key)
        return live[1] if live else time.time()

    def clear(self, key: str) -> None:
        def work(fd: int, now: float) -> None:
            slot = self._slot(fd, key, now)
            if slot.count or slot.previous or slot.window:
                slot.hash, slot.window, slot.count, slot.previous = 0, 0, 0, 0
                slot.write(fd)

        self._run(work)

    def reset(self) -> int | None:
        def work(fd: int, now: float) -> None:
            os.ftruncate(fd, 0)
            self._start_again(fd)

        self._run(work)
        return None

    def check(self) -> bool:
        """Whether the counters file works (made or repaired if it can be): :class:`RateLimiter`
        asks this now and then while it counts in memory, and goes back to the file once it is True."""
        try:
            self._run(lambda fd, now: None)
            return True
        except OSError:
            return False
