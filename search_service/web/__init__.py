"""The Flask app: JSON API, HTML pages and the search-box widget, built by :func:`create_app`."""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.utils import redirect

from ..config import SETTINGS, Settings, load_settings
from ..engine.searcher import EngineOptions, SearchEngine
from ..engine.writer import IndexWriterThread
from ..errors import (
    HttpError,
    IndexUnavailable,
    InvalidParameter,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    SearchError,
    UnsupportedMediaType,
)
from ..freshness import one_look
from ..text import analysis

log = logging.getLogger(__name__)
_writer_lock = threading.Lock()

ENGINE_KEY = "search_engine"
WRITER_KEY = "index_writer"


def create_app(settings: Settings | None = None, engine: SearchEngine | None = None) -> Flask:
    """Build the app; ``settings`` default to :func:`config.load_settings` (file < env).

    jieba is initialized here, before any server thread exists, because its lazy
    initialization is not thread-safe.
    """
    settings = settings or load_settings()
    if settings.public_url and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", settings.public_url.strip()):
        from ..errors import ConfigError

        raise ConfigError(f"public_url = {settings.public_url!r} is not an absolute http(s) URL; write it like "
                          "https://search.example.org/ (or leave it empty).", param="public_url")
    analysis.initialize(settings.cache_dir, settings.user_dict or None)
    from .access_log import configure_logging, install_access_log
    from .json_provider import OrjsonProvider
    from .limits import TrustedProxies, install_rate_limit, parse_networks
    from .metrics import StampStart, install_metrics

    configure_logging(settings)
    app = SearchApp(__name__)
    app.config["SETTINGS"] = settings
    # Never the debugger or tracebacks in responses, whatever FLASK_DEBUG says.
    app.config["DEBUG"] = False
    app.config["PROPAGATE_EXCEPTIONS"] = False
    # Bodies over the write limit are refused before anything reads them.
    app.config["MAX_CONTENT_LENGTH"] = settings.write_body_max_mb * 1024 * 1024
    # Flask's documented middleware idiom; mypy sees wsgi_app as a method only.
    app.wsgi_app = CatchAll(StampStart(TrustedProxies(OneLookPerRead(app.wsgi_app),  # type: ignore[method-assign]
                                                      parse_networks(settings.trusted_proxies))))
    app.json = OrjsonProvider(app)  # Chinese as UTF-8, keys in order; see json_provider
    app.extensions[ENGINE_KEY] = engine or SearchEngine(settings.index_dir, EngineOptions.from_settings(settings))

    from . import admin, api, desk, pages, tracking, writes

    app.register_blueprint(api.blueprint)
    app.register_blueprint(pages.blueprint)
    app.register_blueprint(writes.blueprint)
    app.register_blueprint(tracking.blueprint)  # POST /api/click
    app.register_blueprint(admin.blueprint)  # /admin/analytics
    app.register_blueprint(desk.blueprint)  # /admin/desk, /api/admin/..., /api/hot (docs/ADMIN.md)
    # Search analytics: a queue and one writer thread (a no-op recorder when analytics = false).
    app.extensions[tracking.ANALYTICS_KEY] = tracking.open_app_recorder(settings, app.extensions[ENGINE_KEY])
    # Order matters: requests are counted and logged even when refused, the rate limit runs
    # before the bounds, and the bounds before any view.
    install_metrics(app)
    install_access_log(app, settings)
    install_rate_limit(app, settings)
    from .costly import install_costly_gate

    install_costly_gate(app, settings)  # after the limits: a refused request takes no turn
    from .caching import install_caching

    install_caching(app, settings)  # after the limits: a 304 is still a counted request
    app.config[SERVER_PATHS_KEY] = server_paths(settings)
    _register_error_handlers(app)
    _register_utf8_check(app)
    _register_headers(app, settings)
    try:
        # Before the first request (and before /healthz can say ok): open the index, load the
        # dictionaries, and the readers every server thread shares.
        seconds = app.extensions[ENGINE_KEY].warm()
        log.info("index opened and warmed in %.2f s", seconds)
    except SearchError as exc:
        log.warning("starting without an index: %s", exc.message)
    return app


def engine_of(app: Flask) -> SearchEngine:
    """The app's shared :class:`SearchEngine`."""
    return app.extensions[ENGINE_KEY]


def close_app(app: Flask) -> None:
    """Commit queued writes, stop the writer and close every searcher (shutdown, tests)."""
    writer = app.extensions.pop(WRITER_KEY, None)
    if writer is not None:
        writer.close()
    from .tracking import close_app_recorder

    close_app_recorder(app)  # writes what is queued; before the engine closes (it counts results)
    engine_of(app).close()


def writer_of(app: Flask) -> IndexWriterThread:
    """The app's single writer thread, started on first use."""
    writer = app.extensions.get(WRITER_KEY)
    if writer is None:
        with _writer_lock:
            writer = app.extensions.get(WRITER_KEY)
            if writer is None:
                settings = app.config["SETTINGS"]
                engine = engine_of(app)
                writer = IndexWriterThread(engine.store, engine, commit_delay=settings.commit_delay,
                                           max_pending=settings.write_queue_max,
                                           lock_timeout=settings.lock_timeout).start()
                app.extensions[WRITER_KEY] = writer
    return writer


def wants_json() -> bool:
    """True for the JSON endpoints (their errors use the JSON shape)."""
    path = request.path
    return path.startswith("/api/") or path in ("/healthz", "/openapi.json")


SERVER_PATHS_KEY = "SERVER_PATHS"

#: What a client is told when no index is served, whatever the reason (the reason names
#: the server's folders: it goes to the log, and to ``/healthz`` without them).
INDEX_UNAVAILABLE_MESSAGE = ("The search index is not available right now (none has been published yet, or it "
                             "cannot be opened); try again later. Operators: GET /healthz says why and the server "
                             "log has the details.")

# An absolute file path with at least two parts (/srv/index, /tmp/x/y.db), not one of this
# service's own URLs: scrubbed from the messages of server errors, whatever raised them.
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])/(?!(?:api|doc|static|admin|search)\b)[^\s/'\"`:;,()<>]+"
                            r"(?:/[^\s/'\"`:;,()<>]*)+(?<![.])")
# Where a known folder's name ends: a separator, or a sentence's punctuation (never inside a longer name).
_PATH_END = r"(?=$|[/\s'\"`:;,()<>]|[.!?](?:\s|$))"


def server_paths(settings: Settings) -> tuple[tuple[re.Pattern[str], str], ...]:
    """The server's own folders and files (every ``path`` setting, the working and temporary
    folders, the home folder), each with the name a public message gives it instead, longest first.

    A path is matched whole (``/srv/idx`` is not replaced inside ``/srv/idx2``), as configured
    and resolved (symbolic links followed).
    """
    named: dict[str, str] = {}
    for setting in SETTINGS:
        value = getattr(settings, setting.name, "") if setting.type == "path" else ""
        if value:
            for form in (str(value), os.path.realpath(value)):
                named.setdefault(form.rstrip("/"), f"<{setting.name}>")
    for label, folder in (("<working folder>", os.getcwd()), ("<temporary folder>", tempfile.gettempdir()),
                          ("<home folder>", os.path.expanduser("~"))):
        for form in (folder, os.path.realpath(folder)):
            named.setdefault(form.rstrip("/"), label)
    # "/" or a one-letter folder would match inside every path and every URL.
    usable = [(path, label) for path, label in named.items() if path.count("/") >= 1 and len(path) > 2]
    usable.sort(key=lambda item: -len(item[0]))
    return tuple((re.compile(re.escape(path) + _PATH_END), label) for path, label in usable)


def public_message(message: str, paths=None) -> str:
    """``message`` with the server's folders named by their setting instead (``<index_dir>``) and
    any other absolute file path as ``<path>``: for the message of a server error (5xx), which a
    client reads; the log keeps the original.

    Client errors (4xx) are not changed: they quote the client's own input (a path it asked
    for, an id), never the server's files.
    """
    if paths is None:
        try:
            from flask import current_app

            paths = current_app.config.get(SERVER_PATHS_KEY, ())
        except RuntimeError:  # outside an app
            paths = ()
    for pattern, label in paths:
        message = pattern.sub(label, message)
    return _ABSOLUTE_PATH.sub("<path>", message)


def error_body(error: SearchError) -> dict:
    """The public body of ``error``. A server error's message shows no server path; an unavailable
    index is only said to be unavailable, except to ``/healthz`` (monitoring), which gets the reason."""
    body = error.to_dict()
    if isinstance(error, IndexUnavailable) and request.path != "/healthz":
        body["error"]["message"] = INDEX_UNAVAILABLE_MESSAGE
    elif error.status >= 500:
        body["error"]["message"] = public_message(error.message)
    return body


def error_response(error: SearchError) -> Response:
    """The one JSON error shape: ``{"error": {"status", "code", "message", "param"?}}``."""
    response = jsonify(error_body(error))
    response.status_code = error.status
    return response


#: A server error's log line is repeated at most this often (seconds) for the same message:
#: a missing index must not write a warning per request.
_LOG_REPEAT_SECONDS = 60.0
_logged: dict[str, float] = {}
_logged_lock = threading.Lock()


def _log_server_error(error: SearchError) -> None:
    """The full message of a server error (5xx), folders included, for the operator's log."""
    key = f"{error.code}: {error.message}"
    now = time.monotonic()
    with _logged_lock:
        if now - _logged.get(key, -_LOG_REPEAT_SECONDS) < _LOG_REPEAT_SECONDS:
            return
        if len(_logged) > 1000:
            _logged.clear()
        _logged[key] = now
    log.warning("%s (%s %s): %s", error.code, request.method, request.path, error.message)


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(SearchError)
    def handle_search_error(error: SearchError):
        if wants_json():
            response = error_response(error)
            if error.status >= 500 and error.code != "internal_error":
                _log_server_error(error)  # the pages log their own (error_pages)
        else:
            response = app.make_response((render_template("error.html", error=error), error.status))
        if error.status == 503:
            response.headers["Retry-After"] = "5"
        challenge = getattr(error, "challenge", None)
        if error.status == 401 and challenge:
            response.headers["WWW-Authenticate"] = challenge
        return response

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException):
        valid_methods = getattr(error, "valid_methods", None) or []
        messages: dict[int | None, str] = {
            404: f"No such page or endpoint: {request.path}. See /openapi.json for the API.",
            405: f"{request.method} is not allowed on {request.path}; "
            f"allowed: {', '.join(sorted(valid_methods))}.",
            413: f"The request body is over {app.config['MAX_CONTENT_LENGTH']} bytes "
            "(setting write_body_max_mb). Split the batch.",
        }
        kind = _HTTP_ERRORS.get(error.code) or _http_error_class(error.code or 500)
        response = handle_search_error(kind(messages.get(error.code, error.description or error.name)))
        if valid_methods:
            response = app.make_response(response)
            response.headers["Allow"] = ", ".join(valid_methods)
        return response

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception):
        # Never a stack trace in a response, and one compact line in the log (not a traceback
        # a client could make as long as it likes): a bug to fix, located.
        log.error("%s", describe_unexpected(error, request.method, request.path))
        internal = SearchError("Internal error; the server log has the details.")
        return handle_search_error(internal)


#: werkzeug's HTTP errors that have a class of their own on the ladder (with its code).
_HTTP_ERRORS: dict[int | None, type[SearchError]] = {404: NotFound, 405: MethodNotAllowed, 413: PayloadTooLarge,
                                                     415: UnsupportedMediaType}


@functools.cache
def _http_error_class(status: int) -> type[HttpError]:
    """The :class:`HttpError` subclass for one status (400, 416, ...): its status a class attribute."""
    return type(f"HttpError{status}", (HttpError,), {"status": status, "__doc__": f"HTTP {status}."})


def describe_unexpected(error: BaseException, method: str, path: str) -> str:
    """One log line for an unexpected exception: where the request went, what, and where in the code."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if "search_service" in f.filename] or frames
    where = ""
    if ours:
        name = ours[-1].filename.replace(os.sep, "/")
        name = name.split("/search_service/", 1)[1] if "/search_service/" in name else os.path.basename(name)
        where = f" at {name}:{ours[-1].lineno} in {ours[-1].name}"
    shown_path = path if len(path) <= 200 else path[:200] + f"…({len(path)} chars)"
    message = " ".join(str(error).split())  # one line, whatever the exception says
    message = message if len(message) <= 300 else message[:300] + "…"
    return f"unhandled {type(error).__name__} on {method} {shown_path!r}: {message}{where}"


class SearchApp(Flask):
    """The Flask app, minus a check per call: Flask asks ``inspect`` whether each hook and view
    is a coroutine every time it calls it (ten times a search); none is, so the answer is
    remembered per function."""

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        known = self._sync.get(func)
        if known is None:
            known = self._sync[func] = super().ensure_sync(func)
        return known

    @functools.cached_property
    def _sync(self) -> dict[Callable[..., Any], Callable[..., Any]]:
        return {}


class OneLookPerRead:
    """WSGI middleware: a GET or HEAD reads one state of the index, rules and synonyms
    (``freshness.one_look``); a write must see its own commit, so it looks every time."""

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return self.wsgi_app(environ, start_response)
        with one_look():
            return self.wsgi_app(environ, start_response)


class CatchAll:
    """Outermost WSGI layer: an exception that escapes everything else (middleware, an error
    handler that itself failed) becomes a JSON 500 and one log line, never a traceback that
    waitress would print."""

    BODY = (b'{"error": {"status": 500, "code": "internal_error", '
            b'"message": "Internal error; the server log has the details."}}')

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        try:
            return self.wsgi_app(environ, start_response)
        except Exception as error:  # noqa: BLE001 - the last line of defence
            log.error("%s", describe_unexpected(error, environ.get("REQUEST_METHOD", "?"),
                                                environ.get("PATH_INFO", "")))
            start_response("500 Internal Server Error",
                           [("Content-Type", "application/json"), ("Content-Length", str(len(self.BODY)))],
                           sys.exc_info())
            return [self.BODY]


def _register_utf8_check(app: Flask) -> None:
    """URLs must be UTF-8: werkzeug would turn invalid bytes into U+FFFD, so an id or a query
    would silently become something other than what was sent."""

    @app.before_request
    def check_utf8() -> None:
        environ = request.environ
        try:
            environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8")
        except UnicodeEncodeError:
            pass  # already text (not from a WSGI server): nothing was decoded with replacement
        except UnicodeDecodeError as exc:
            raise InvalidParameter(
                f"The URL path is not valid UTF-8 (byte {exc.start + 1} of the decoded path); "
                "percent-encode the UTF-8 bytes of the text.", param="path") from None
        try:
            query = environ.get("QUERY_STRING", "").encode("latin-1")
        except UnicodeEncodeError:
            return  # already text (not from a WSGI server)
        if b"%" in query or not query.isascii():
            try:
                unquote_to_bytes(query).decode("utf-8")
                return  # all of it is UTF-8 (nearly every request): no need to look pair by pair
            except UnicodeDecodeError:
                pass
            for pair in query.split(b"&"):
                try:
                    unquote_to_bytes(pair).decode("utf-8")
                except UnicodeDecodeError:
                    try:
                        name = unquote_to_bytes(pair.split(b"=", 1)[0]).decode("utf-8")
                    except UnicodeDecodeError:
                        name = "(a parameter name)"
                    raise InvalidParameter(
                        f"The value of {name!r} is not valid UTF-8 once percent-decoded; send UTF-8 text.",
                        param=name) from None


def _keep_redirects_on_this_site(response: Response) -> None:
    """Make a redirect werkzeug built from the request's ``Host`` relative.

    werkzeug's routing redirects (``/api//search`` -> ``/api/search``, a missing trailing
    slash) are absolute URLs made from the ``Host`` header, which the client chooses: a link
    with ``Host: evil.example`` would send the reader off the site (and a shared cache could
    keep that answer). A relative ``Location`` (RFC 9110 §10.2.2) always stays on the host
    the reader asked.
    """
    if not 300 <= response.status_code < 400:
        return
    location = response.headers.get("Location")
    if location:
        origin = request.host_url.rstrip("/")  # scheme://host as the client sent it
        if location == origin or location.startswith(origin + "/"):
            relative = location[len(origin):] or "/"
            response.headers["Location"] = relative
            if response.mimetype == "text/html":
                # werkzeug's redirect page repeats the URL in its link: the same page, relative.
                response.set_data(redirect(relative, response.status_code).get_data())


def _register_headers(app: Flask, settings: Settings) -> None:
    allowed_origins = set(settings.cors_origins)

    @app.after_request
    def add_headers(response: Response) -> Response:
        _keep_redirects_on_this_site(response)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        if wants_json() or request.path == "/metrics":
            # Data, never a page: nothing may run in it or frame it.
            response.headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
            response.headers.setdefault("X-Frame-Options", "DENY")
        if wants_json():
            origin = request.headers.get("Origin")
            if origin and (origin in allowed_origins or "*" in allowed_origins):
                response.headers["Access-Control-Allow-Origin"] = origin
                response.headers["Access-Control-Allow-Methods"] = "GET, OPTIONS"
                response.headers["Access-Control-Max-Age"] = "600"
            response.headers.add("Vary", "Origin")
        else:
            response.headers.setdefault(
                "Content-Security-Policy",
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                "object-src 'none'; base-uri 'self'; frame-ancestors 'self'; form-action 'self'",
            )
            response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        return response
