"""web/event_loop: waitress' loop asking only the connections that are doing something.

An in-process waitress server (the service's guarded one) on a free port, its loop turned by
:class:`EventLoop` in a thread of the test, and real sockets as clients.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time

import pytest
from waitress import wasyncore
from waitress.server import create_server

from search_service.web.connections import ConnectionLimits, GuardedChannel, guard, server_options
from search_service.web.event_loop import ChannelMap, EventLoop


def echo_app(environ, start_response):
    body = environ.get("PATH_INFO", "").encode("latin-1")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


class CountingChannel(GuardedChannel):
    asked = 0

    def readable(self):
        CountingChannel.asked += 1
        return super().readable()


@contextlib.contextmanager
def serving(socket_map, idle_timeout: float = 60.0):
    limits = ConnectionLimits(connection_limit=500, idle_timeout=idle_timeout, header_timeout=10.0)
    server = guard(create_server(echo_app, map=socket_map, host="127.0.0.1", port=0, threads=4,
                                 asyncore_use_poll=True, **server_options(limits)), limits)
    server.channel_class = CountingChannel
    loop = EventLoop(socket_map, server)
    stopping = threading.Event()
    turning = threading.Event()
    turning.set()

    def run() -> None:
        while not stopping.is_set():
            if turning.is_set():
                loop.once(0.05)
            else:
                time.sleep(0.01)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield server, loop, turning
    finally:
        stopping.set()
        thread.join(10)
        wasyncore.close_all(socket_map)
        loop.close()
        server.task_dispatcher.shutdown()


def get(sock: socket.socket, path: str) -> bytes:
    """One keep-alive GET on ``sock``; the body."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, "connection closed"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(4096)
    return body


def test_requests_over_many_keep_alive_connections_coming_and_going_are_all_answered():
    rng = random.Random(3)
    with serving(ChannelMap()) as (server, _, _):
        port = server.effective_port
        conns = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(40)]
        try:
            for number in range(600):
                slot = rng.randrange(len(conns))
                if rng.random() < 0.05:  # closed, and its number probably given to the next one
                    conns[slot].close()
                    conns[slot] = socket.create_connection(("127.0.0.1", port), timeout=10)
                assert get(conns[slot], f"/r{number}") == f"/r{number}".encode()
        finally:
            for conn in conns:
                conn.close()


def test_a_turn_does_not_ask_connections_that_wait_for_their_next_request():
    with serving(ChannelMap()) as (server, loop, turning):
        conns = [socket.create_connection(("127.0.0.1", server.effective_port), timeout=10) for _ in range(30)]
        try:
            for number, conn in enumerate(conns):
                assert get(conn, f"/{number}") == f"/{number}".encode()
            turning.clear()  # the test turns the loop itself now
            time.sleep(0.2)
            for _ in range(3):
                loop.once(0.01)  # the last answers' wake-ups: their connections settle
            CountingChannel.asked = 0
            for _ in range(20):
                server.pull_trigger()  # a wake-up, as after every answer
                loop.once(0.5)
            assert CountingChannel.asked == 0
            turning.set()
            assert get(conns[7], "/again") == b"/again"  # an idle one is still heard
        finally:
            for conn in conns:
                conn.close()


def test_a_connection_idle_past_its_timeout_is_closed():
    with serving(ChannelMap(), idle_timeout=0.5) as (server, _, _):
        conn = socket.create_connection(("127.0.0.1", server.effective_port), timeout=10)
        try:
            assert get(conn, "/a") == b"/a"
            conn.settimeout(5)
            assert conn.recv(10) == b""  # closed by the server's maintenance, a settled connection
        finally:
            conn.close()


@pytest.mark.parametrize("socket_map", [{}, ChannelMap()], ids=["plain dict", "ChannelMap"])
def test_the_loop_serves_either_map(socket_map):
    # A plain dict (not noting its changes) gets waitress' own turn.
    with serving(socket_map) as (server, _, _):
        with socket.create_connection(("127.0.0.1", server.effective_port), timeout=10) as conn:
            assert get(conn, "/x") == b"/x"
            assert get(conn, "/y") == b"/y"
