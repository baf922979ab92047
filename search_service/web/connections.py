"""Idle and slow connections must not take the service down: waitress' accept loop, guarded.

Waitress serves at most ``connection_limit`` connections and closes one only after
``channel_timeout`` seconds without activity (120 by default). So 250 TCP connections that
send nothing filled every slot and every search waited for minutes; one byte a second kept a
connection alive forever (slowloris); and when the process ran out of descriptors, ``accept``
failed at once on every turn of the loop, which spun at full CPU writing a traceback each time.
What this module adds, on top of the server ``create_server`` made:

* **A header deadline** (``header_timeout``): a request's headers must be complete within this
  many seconds of its first byte, however slowly they trickle; then the connection is closed.
* **An idle deadline** (``idle_timeout``, waitress' ``channel_timeout``): a connection with no
  request in progress is closed after this many seconds without a byte.
* **A reserve**: once the open connections come within ``reserve`` of ``connection_limit``,
  connections idle for more than a second (no request in service, nothing to send) are closed,
  oldest first, so a new visitor is accepted at once instead of waiting for deadlines. A
  request being served is never cut.
* **Accept back-off**: when ``accept`` fails for lack of descriptors or memory, the listener
  rests for half a second (idle connections are closed meanwhile) and the failure is logged
  once a minute with a count, not once per turn.

A reverse proxy in front (docs/DEPLOY.md) is the real answer for the public internet; this
keeps the service alone from falling over.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import time

from waitress.channel import HTTPChannel

__all__ = ["ConnectionLimits", "GuardedChannel", "guard", "server_options"]

log = logging.getLogger(__name__)

#: accept() errors that mean "no room now": descriptors or kernel memory exhausted.
_NO_ROOM = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: How long the listener rests after accept() found no room.
ACCEPT_PAUSE = 0.5
#: Under pressure, a connection idle this long (no request, nothing to send) may be closed.
PRESSURE_IDLE = 1.0
#: At most one "no room" log line per this many seconds.
LOG_EVERY = 60.0


@dataclasses.dataclass(frozen=True)
class ConnectionLimits:
    """The bounds of :func:`guard` (settings ``connection_limit``, ``idle_timeout``, ``header_timeout``)."""

    connection_limit: int = 500
    idle_timeout: float = 30.0
    header_timeout: float = 10.0

    @property
    def reserve(self) -> int:
        """Slots kept free for new connections by closing idle ones: a tenth, at least 4."""
        return max(4, self.connection_limit // 10)

    @classmethod
    def from_settings(cls, settings) -> ConnectionLimits:
        return cls(settings.connection_limit, settings.idle_timeout, settings.header_timeout)


class GuardedChannel(HTTPChannel):
    """waitress' channel, remembering when the request it is reading began."""

    #: time.time() of the first byte of the request being read (None between requests).
    request_started: float | None = None

    def received(self, data):
        if self.request is None and data:
            self.request_started = time.time()
        result = super().received(data)
        if self.request is None:
            self.request_started = None  # every request in ``data`` was complete
        return result

    def reading_headers_since(self) -> float | None:
        """When the request whose headers are still incomplete began (None if there is none)."""
        request = self.request
        if request is None or request.headers_finished:
            return None
        return self.request_started

    def is_idle(self) -> bool:
        """Nothing in service, nothing to send, no request body being read: safe to close."""
        request = self.request
        return (not self.requests and not self.total_outbufs_len and not self.will_close
                and (request is None or not request.headers_finished))


class _GuardedServer:
    """Mixed in before waitress' server class by :func:`guard` (see the module docstring)."""

    guard_limits: ConnectionLimits
    #: Set when connections were marked for closing here: the event loop asks all of them again.
    channels_changed = False
    _accept_paused_until = 0.0
    _no_room_logged = -LOG_EVERY
    _no_room_count = 0

    def maintenance(self, now: float) -> None:
        limits = self.guard_limits
        for channel in list(self.active_channels.values()):  # type: ignore[attr-defined]
            if channel.requests:
                continue  # a request in service is never cut
            started = channel.reading_headers_since() if isinstance(channel, GuardedChannel) else None
            if started is not None and now - started > limits.header_timeout:
                channel.will_close = True  # headers trickled for too long (slowloris)
                self.channels_changed = True
            elif now - channel.last_activity > limits.idle_timeout:
                channel.will_close = True
                self.channels_changed = True

    def relieve_pressure(self, now: float) -> int:
        """Close idle connections, oldest first, down to the reserve; how many were closed."""
        limits = self.guard_limits
        channels = self.active_channels.values()  # type: ignore[attr-defined]
        excess = len(channels) - (limits.connection_limit - limits.reserve) + 1
        if excess <= 0:
            return 0
        idle = sorted((channel for channel in channels
                       if isinstance(channel, GuardedChannel) and channel.is_idle()
                       and now - channel.last_activity > PRESSURE_IDLE),
                      key=lambda channel: channel.last_activity)
        for channel in idle[:excess]:
            channel.will_close = True
            self.channels_changed = True
        return min(excess, len(idle))

    def readable(self) -> bool:
        now = time.time()
        if len(self.active_channels) >= self.guard_limits.connection_limit - self.guard_limits.reserve:  # type: ignore[attr-defined]
            self.relieve_pressure(now)
        accepting = super().readable()  # type: ignore[misc]  # waitress' cleanup and connection limit
        return accepting and time.monotonic() >= self._accept_paused_until

    def handle_accept(self) -> None:
        try:
            accepted = self.accept()  # type: ignore[attr-defined]
            if accepted is None:
                return
            conn, addr = accepted
            self.set_socket_options(conn)  # type: ignore[attr-defined]
        except OSError as exc:
            if exc.errno in _NO_ROOM:
                self._no_room(exc)
            else:  # the client went away before we got to it: nothing to say
                log.debug("accept() failed: %s", exc)
            return
        self.channel_class(self, conn, self.fix_addr(addr), self.adj, map=self._map)  # type: ignore[attr-defined]

    def _no_room(self, exc: OSError) -> None:
        now = time.monotonic()
        self._accept_paused_until = now + ACCEPT_PAUSE
        self._no_room_count += 1
        closed = self.relieve_pressure(time.time())
        if now - self._no_room_logged >= LOG_EVERY:
            log.warning("cannot accept connections (%s) with %d open: resting %.1f s, closing %d idle "
                        "(%d such refusals since the last line); raise the open-files limit or lower "
                        "connection_limit", exc.strerror or exc, len(self.active_channels),  # type: ignore[attr-defined]
                        ACCEPT_PAUSE, closed, self._no_room_count)
            self._no_room_logged = now
            self._no_room_count = 0


def server_options(limits: ConnectionLimits) -> dict:
    """waitress ``create_server`` adjustments that go with :func:`guard`."""
    return {
        "connection_limit": limits.connection_limit,
        "channel_timeout": limits.idle_timeout,
        "cleanup_interval": 1,  # deadlines checked every second (waitress: every 30 s)
        "log_socket_errors": False,  # a client's reset is not the operator's problem (no tracebacks)
    }


def guard(server, limits: ConnectionLimits):
    """Give a server made by ``create_server(..., **server_options(limits))`` the deadlines,
    reserve and back-off above; returns it."""
    base = type(server)
    server.__class__ = type(f"Guarded{base.__name__}", (_GuardedServer, base), {})
    server.guard_limits = limits
    server.channel_class = GuardedChannel
    return server
