"""A deadline for a whole HTTP answer, status line, headers and body, however slowly its bytes come.

urllib3's read timeout bounds each read of the socket, so a server that sends
one byte a second holds a request for as long as it likes. :class:`Watchdog`
is one thread that shuts the socket of the request in flight down when the
request's deadline passes: the read blocked on it returns at once, and the
request fails. The connections of :func:`watched_pool_manager` register their
sockets with the watchdog as they connect and as each request starts.

The connect itself is bounded by the connect timeout (a socket that is not
connected yet cannot be registered), and so is a TLS handshake.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

__all__ = ["Watchdog", "watched_pool_manager"]


class Watchdog:
    """Shuts down the watched socket when the armed deadline passes. One request at a time."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._sock: socket.socket | None = None
        self._fired = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float) -> None:
        """Start a request that must be over within ``seconds``."""
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="crawl-deadline", daemon=True)
                self._thread.start()
            self._deadline = time.monotonic() + seconds
            self._sock = None
            self._fired = False
            self._cond.notify()

    def watch(self, sock: socket.socket | None) -> None:
        """The socket the request in flight reads from now."""
        with self._cond:
            self._sock = sock
            if self._fired and sock is not None:
                _shut(sock)

    @property
    def fired(self) -> bool:
        """True when the deadline of the request in flight has passed."""
        with self._cond:
            return self._fired

    def disarm(self) -> None:
        """The request is over (complete or not)."""
        with self._cond:
            self._deadline = None
            self._sock = None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                remaining = self._deadline - time.monotonic()
                if remaining > 0:
                    self._cond.wait(remaining)
                    continue
                self._fired = True
                self._deadline = None
                if self._sock is not None:
                    _shut(self._sock)


def _shut(sock: socket.socket) -> None:
    # socket.socket's own shutdown, also for an SSLSocket: it ends the reads of the thread blocked on
    # the descriptor without touching the TLS object that thread is using.
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


class _Watched:
    """Mixed into urllib3's connections: every socket they read from is registered with ``watchdog``."""

    watchdog: Watchdog
    sock: Any

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        self.watchdog.watch(sock)
        return sock

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self.watchdog.watch(self.sock)  # for https, the TLS socket over the one _new_conn registered

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is not None:  # a kept-alive connection: no connect() this time
            self.watchdog.watch(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]


def watched_pool_manager(watchdog: Watchdog, **kwargs: Any) -> urllib3.PoolManager:
    """A urllib3 ``PoolManager`` (``kwargs`` as its own) whose connections report their sockets to ``watchdog``."""
    http_conn = type("WatchedHTTPConnection", (_Watched, HTTPConnection), {"watchdog": watchdog})
    https_conn = type("WatchedHTTPSConnection", (_Watched, HTTPSConnection), {"watchdog": watchdog})
    manager = urllib3.PoolManager(**kwargs)
    manager.pool_classes_by_scheme = {
        "http": type("WatchedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
        "https": type("WatchedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
    }
    return manager
