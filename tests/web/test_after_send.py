"""after_send: a request's bookkeeping runs once the server closes its response (under serve), at once
elsewhere; a failure in it is one log line, never the request's or the server's."""

from __future__ import annotations

import io
import logging

import pytest
from flask import Flask, send_file
from waitress.buffers import ReadOnlyFileBasedBuffer
from werkzeug.test import EnvironBuilder

from search_service.web.after_send import RunAfterSend, after_send


@pytest.fixture()
def done() -> list[str]:
    return []


@pytest.fixture()
def app(done) -> Flask:
    app = Flask(__name__)

    @app.get("/answer")
    def answer():
        after_send(lambda: done.append("first"))
        after_send(lambda: done.append("second"))
        return "the answer"

    @app.get("/failing")
    def failing():
        after_send(lambda: 1 / 0)
        after_send(lambda: done.append("after the failure"))
        return "still answered"

    @app.get("/file")
    def file():
        after_send(lambda: done.append("file"))
        return send_file(io.BytesIO(b"file body"), mimetype="text/plain")

    @app.get("/broken")
    def broken():
        after_send(lambda: done.append("broken"))
        raise RuntimeError("the view failed")

    return app


def call(wsgi_app, path: str, file_wrapper=None):
    environ = EnvironBuilder(path=path).get_environ()
    if file_wrapper is not None:
        environ["wsgi.file_wrapper"] = file_wrapper
    started = []
    iterable = wsgi_app(environ, lambda status, headers, exc_info=None: started.append(status))
    return iterable, started


def test_the_work_runs_when_the_server_closes_the_response_in_order(app, done):
    iterable, started = call(RunAfterSend(app), "/answer")
    assert b"".join(iterable) == b"the answer" and started == ["200 OK"]
    assert done == []  # the body is out; nothing ran yet
    iterable.close()
    assert done == ["first", "second"]
    iterable.close()  # a second close runs nothing again
    assert done == ["first", "second"]


def test_without_the_wrapper_the_work_runs_at_once(app, done):
    # The Flask test client (or a server of an embedding program) need not close a response.
    assert app.test_client().get("/answer").data == b"the answer"
    assert done == ["first", "second"]


def test_a_failing_piece_is_one_log_line_and_the_rest_still_runs(app, done, caplog):
    iterable, _ = call(RunAfterSend(app), "/failing")
    assert b"".join(iterable) == b"still answered"
    with caplog.at_level(logging.WARNING, logger="search_service.web.after_send"):
        iterable.close()
    assert done == ["after the failure"]
    (record,) = [r for r in caplog.records if r.name == "search_service.web.after_send"]
    assert "ZeroDivisionError" in record.getMessage() and record.exc_info is None


def test_a_file_the_server_sends_itself_keeps_its_wrapper_and_the_work_runs_at_once(app, done):
    iterable, _ = call(RunAfterSend(app), "/file", file_wrapper=ReadOnlyFileBasedBuffer)
    assert isinstance(iterable, ReadOnlyFileBasedBuffer)  # waitress' fast path for files
    assert done == ["file"]


def test_a_view_that_raises_still_runs_its_work(app, done):
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(RuntimeError, match="the view failed"):
        call(RunAfterSend(app), "/broken")
    assert done == ["broken"]
