"""Advisory file locks between processes (``flock``): the one way the service takes turns on disk.

The kernel drops a lock when its holder exits, kill -9 included, so a crashed process never
leaves one behind. Locks are per open file: a thread that needs one against the other threads
of its own process must also hold a thread lock (see ``web.rate_counters``).
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def file_lock(path: Path | str, *, shared: bool = False, blocking: bool = True) -> Iterator[bool]:
    """Hold an flock of ``path`` (created if missing) for the ``with`` block.

    Exclusive unless ``shared``. Yields True once held; without ``blocking``, yields False at
    once when another process holds it (the block then runs without the lock).
    """
    with open(path, "a+b") as handle:
        mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if blocking else fcntl.LOCK_NB)
        try:
            fcntl.flock(handle, mode)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
