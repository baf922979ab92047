"""The analytics SQLite file beside the index: telling a damaged file from a busy one, and
setting a damaged one aside.

A file truncated or overwritten under a running server ("file is not a database", "database
disk image is malformed") fails every statement from then on; nothing but a new file helps.
A busy file ("database is locked") is healthy and only needs waiting for. A damaged file's
rows are moved aside (``<name>.damaged-<UTC time>``) so that they can still be recovered by
hand (``sqlite3 FILE .recover``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
from pathlib import Path

__all__ = ["SIDE_FILES", "abandon", "inode", "is_busy", "is_sound", "set_aside"]

#: The files SQLite keeps beside a database in WAL mode.
SIDE_FILES = ("-wal", "-shm")

# Connections to a file that was replaced, kept open until the process ends (see abandon).
_abandoned: list[sqlite3.Connection] = []


def is_busy(exc: BaseException) -> bool:
    """A lock held elsewhere: worth waiting for, no sign that the file is damaged."""
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def inode(path: Path | str) -> int | None:
    """The inode of ``path`` (None when it does not exist): a file replaced by another process has a new one."""
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def is_sound(path: Path | str) -> bool:
    """Whether ``path`` opens as an SQLite database that passes ``PRAGMA quick_check``."""
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=10)) as db:
            return db.execute("PRAGMA quick_check").fetchone() == ("ok",)
    except sqlite3.Error:
        return False


def abandon(conn: sqlite3.Connection) -> None:
    """Let go of a connection to a file that was deleted or renamed, without closing it.

    SQLite names a database's WAL and shared-memory files after the path it was opened
    with, and the last connection to close deletes them *by that path*: closing a connection
    to a file set aside would delete the WAL of the new file now at that path, taking the
    rows other connections committed there and leaving them writing into a deleted file.
    An abandoned connection is kept open (a few kB) until the process ends; the workers of
    ``serve`` end with ``os._exit``, which closes nothing.
    """
    _abandoned.append(conn)


def set_aside(path: Path | str) -> Path:
    """Rename the database and its side files to ``<name>.damaged-<UTC time>``; the new main name."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    target = Path(f"{path}.damaged-{stamp}")
    number = 1
    while target.exists():
        number += 1
        target = Path(f"{path}.damaged-{stamp}-{number}")
    for suffix in ("", *SIDE_FILES):
        with contextlib.suppress(FileNotFoundError):
            os.replace(f"{path}{suffix}", f"{target}{suffix}")
    return target
