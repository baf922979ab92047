"""waitress' event loop, with the cost of a turn proportional to the connections that are doing something.

Every turn of waitress' loop (``wasyncore.poll2``) builds a new ``poll`` set from scratch: it asks
every connection whether it is readable and writable and registers each one again. A connection
that waits for its next request (a browser's keep-alive connection, a reverse proxy's pool of
upstream connections) costs that on every turn, and a request takes several turns (its arrival,
then the wake-up its thread sends when the answer is out): measured with the 64 keep-alive
connections of ``bench.speed`` (32 a worker), 0.2 ms of every search went to asking idle
connections what they want, growing with their number.

Here the registrations persist (``epoll``, level-triggered: the same events as ``poll``) and a
turn asks only the objects whose answer may have changed:

* the listeners and the trigger, every turn (the listener's ``readable()`` runs the server's
  maintenance and decides whether to accept, as in waitress);
* connections added to or removed from the map since the last turn (:class:`ChannelMap` notes them);
* connections that had an event, until they are *settled*: no request in service or queued, nothing
  to send, not closing. Only the loop's thread gives a connection a request (it reads it), so a
  settled connection changes only by an event of its own, which puts it back under watch;
* every connection after the server's maintenance or its pressure relief marked some for closing
  (``channels_changed``, set by :mod:`connections`), at most once a second in normal operation.

A connection with nothing to wait for (its request in service, nothing to send) is not registered
at all, as ``poll2`` leaves it out: a client hanging up meanwhile is noticed after the answer, not
in the middle of it. Without ``epoll`` (not Linux), waitress' own loop runs.
"""

from __future__ import annotations

import select

from waitress import wasyncore
from waitress.channel import HTTPChannel

__all__ = ["ChannelMap", "EventLoop"]

_READ = select.POLLIN | select.POLLPRI
_WRITE = select.POLLOUT


class ChannelMap(dict):
    """waitress' socket map (descriptor -> dispatcher) noting which descriptors came or went."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.changed: set[int] = set(self)

    def __setitem__(self, fd, value) -> None:
        super().__setitem__(fd, value)
        self.changed.add(fd)

    def __delitem__(self, fd) -> None:
        super().__delitem__(fd)
        self.changed.add(fd)

    def pop(self, fd, *default):
        self.changed.add(fd)
        return super().pop(fd, *default)

    def clear(self) -> None:
        self.changed.update(self)
        super().clear()


def _new_epoll():
    """An ``epoll`` set, or None where there is none (not Linux) or none can be had (no descriptor
    left): waitress' own turn then."""
    if not hasattr(select, "epoll"):
        return None
    try:
        return select.epoll()
    except OSError:
        return None


def _settled(channel) -> bool:
    """Waiting for its next request and nothing else: only an event of its own changes that."""
    return (not channel.requests and not channel.total_outbufs_len and not channel.will_close
            and not channel.close_when_flushed)


class EventLoop:
    """Turns of waitress' loop over ``socket_map`` (a :class:`ChannelMap`), see the module docstring."""

    def __init__(self, socket_map: dict, server=None) -> None:
        self.map = socket_map
        self.server = server
        self._epoll = _new_epoll() if isinstance(socket_map, ChannelMap) else None
        self._registered: dict[int, tuple[object, int]] = {}  # fd -> (dispatcher, mask), mask never 0
        self._always: set[int] = set()  # listeners and triggers: asked every turn
        self._watched: set[int] = set()  # connections that may have changed

    def once(self, timeout: float) -> None:
        """One turn: update what is registered, wait up to ``timeout`` seconds, handle the events."""
        epoll = self._epoll
        if epoll is None:
            wasyncore.loop(timeout=timeout, map=self.map, use_poll=True, count=1)
            return
        socket_map = self.map
        if isinstance(socket_map, ChannelMap) and socket_map.changed:
            changed, socket_map.changed = socket_map.changed, set()
            for fd in changed:
                self._arrived_or_left(fd)
        for fd in self._always:
            self._update(epoll, fd)
        if getattr(self.server, "channels_changed", False):
            self.server.channels_changed = False
            self._watched.update(fd for fd in socket_map if fd not in self._always)
        for fd in list(self._watched):
            channel, mask = self._update(epoll, fd)
            # Settled only when read as such: a connection whose request a thread finished between
            # the two reads stays watched, and the thread's wake-up finds it next turn.
            if channel is None or (mask == _READ and _settled(channel)):
                self._watched.discard(fd)
        for fd, flags in epoll.poll(timeout):  # level-triggered, as poll(): unhandled events come again
            dispatcher = socket_map.get(fd)
            if dispatcher is None:
                continue
            wasyncore.readwrite(dispatcher, flags)
            if fd not in self._always:
                self._watched.add(fd)

    def close(self) -> None:
        """Let go of the ``epoll`` descriptor (the map and its sockets are not touched)."""
        if self._epoll is not None:
            self._epoll.close()
            self._epoll = None

    def _arrived_or_left(self, fd: int) -> None:
        dispatcher = self.map.get(fd)
        known = self._registered.get(fd)
        if known is not None and known[0] is not dispatcher:
            self._forget(fd)  # closed, or closed and its number given to a new connection
        self._always.discard(fd)
        self._watched.discard(fd)
        if dispatcher is None:
            return
        if isinstance(dispatcher, HTTPChannel):
            self._watched.add(fd)
        else:
            self._always.add(fd)

    def _update(self, epoll, fd: int) -> tuple[object | None, int]:
        """Register ``fd`` for what its dispatcher waits for now: (the dispatcher or None when it is
        gone, the events registered)."""
        dispatcher = self.map.get(fd)
        if dispatcher is None:
            self._forget(fd)
            return None, 0
        mask = 0
        if dispatcher.readable():
            mask |= _READ
        if dispatcher.writable() and not dispatcher.accepting:  # a listener is never writable
            mask |= _WRITE
        known = self._registered.get(fd)
        if known is not None and known[0] is dispatcher and known[1] == mask:
            return dispatcher, mask
        if not mask:  # nothing to wait for: left out, as poll2 leaves it out
            self._forget(fd)
            return dispatcher, mask
        try:
            if known is not None and known[0] is dispatcher:
                epoll.modify(fd, mask)
            else:
                self._forget(fd)
                epoll.register(fd, mask)
        except FileExistsError:  # still registered for a closed socket whose number is reused
            epoll.modify(fd, mask)
        except FileNotFoundError:  # the kernel dropped it when a socket closed: register again
            epoll.register(fd, mask)
        self._registered[fd] = (dispatcher, mask)
        return dispatcher, mask

    def _forget(self, fd: int) -> None:
        if self._registered.pop(fd, None) is None or self._epoll is None:
            return
        try:
            self._epoll.unregister(fd)
        except OSError:  # its socket is closed: the kernel dropped the registration already
            pass
