"""HTTP caching: ETags on the JSON API, long-lived versioned static files, robots.txt, favicon.

* **JSON API.** A ``GET`` of ``/api/search``, ``/api/suggest``, ``/api/documents/…``,
  ``/api/stats`` or ``/openapi.json`` carries ``ETag`` and ``Cache-Control: no-cache``
  (clients may keep the answer but must ask again; an acknowledged write is visible at
  once). The tag is a hash of what the answer depends on: the open snapshot (generation
  and Whoosh commit), the synonym table, the settings, the path and the query string.
  A request whose ``If-None-Match`` names the current tag gets ``304 Not Modified``
  before any search runs.
* **Static files.** The pages link ``/static/…?v=<content hash>``; a request with the
  current ``v`` is cached for a year (``immutable``). Without it (``widget.js`` as the
  website includes it) the file is cached for five minutes, so a new release reaches
  every site quickly.
* ``/robots.txt`` keeps crawlers out of the endless filter, sort, page and CSV URLs and the
  API; ``/favicon.ico`` is the site's icon (browsers ask for it on every page view).
"""

from __future__ import annotations

import dataclasses
import hashlib
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, Flask, Response, current_app, g, request, send_from_directory

from ..config import Settings
from ..errors import SearchError

blueprint = Blueprint("caching", __name__)

#: GET endpoints whose body depends only on the index, the settings and the URL.
ETAG_ENDPOINTS = frozenset({"api.search", "api.suggest", "api.document", "api.similar", "api.stats",
                            "api.openapi"})
API_CACHE_CONTROL = "no-cache"
VERSIONED_CACHE_CONTROL = "public, max-age=31536000, immutable"
UNVERSIONED_CACHE_CONTROL = "public, max-age=300"

ROBOTS_TXT = """\
# Search result pages are endless combinations of filters; the articles are at /doc/.
User-agent: *
Allow: /$
Allow: /doc/
Allow: /help
Disallow: /search
Disallow: /search.csv
Disallow: /*category=
Disallow: /*date_from=
Disallow: /*date_to=
Disallow: /*sort=
Disallow: /*page=
Disallow: /api/
Disallow: /admin/
Disallow: /opensearch/
"""


@lru_cache(maxsize=256)
def _file_version(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return digest[:12]


def static_version(static_folder: str, filename: str) -> str:
    """A short content hash of a static file (recomputed when the file changes), or ``""``."""
    path = Path(static_folder) / filename
    try:
        stat = path.stat()
    except OSError:
        return ""
    return _file_version(str(path), stat.st_mtime_ns, stat.st_size)


_TABLE_TAGS: dict[int, tuple[object, str]] = {}


def _synonyms_tag(table) -> str:
    """A stable hash of a synonym table (the same in every worker process)."""
    known = _TABLE_TAGS.get(id(table))
    if known is not None and known[0] is table:
        return known[1]
    groups = getattr(table, "groups", ())
    tag = hashlib.sha256(repr(sorted(map(repr, groups))).encode("utf-8")).hexdigest()[:16]
    if len(_TABLE_TAGS) > 16:
        _TABLE_TAGS.clear()
    _TABLE_TAGS[id(table)] = (table, tag)
    return tag


def _settings_tag(settings: Settings) -> str:
    """What in the settings shapes an answer; secrets (tokens, password) left out."""
    fields = {field.name: getattr(settings, field.name) for field in dataclasses.fields(settings)
              if "token" not in field.name and "password" not in field.name}
    return hashlib.sha256(repr(sorted(fields.items())).encode("utf-8")).hexdigest()[:16]


def current_etag() -> str | None:
    """The entity tag of this request's answer, or None when it cannot be known (no index)."""
    from . import engine_of

    engine = engine_of(current_app)
    try:
        snapshot = engine.snapshot()
    except (SearchError, OSError):
        return None
    parts = (
        snapshot.generation, str(snapshot.toc_generation), _synonyms_tag(engine.synonyms.table()),
        engine.rules.tag(),  # staff rules (a pin or a hide changes the answer; docs/ADMIN.md)
        current_app.config["CACHING_SETTINGS_TAG"], request.path,
        request.query_string.decode("latin-1"),
    )
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]
    return f'W/"{digest}"'


def _matches(header: str, etag: str) -> bool:
    """``If-None-Match`` names ``etag`` (weak comparison, as RFC 9110 asks for GET)."""
    if header.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in header.split(","))


def install_caching(app: Flask, settings: Settings) -> None:
    """ETags and 304s on the JSON API, cache lifetimes on static files, versioned static URLs."""
    app.config["CACHING_SETTINGS_TAG"] = _settings_tag(settings)
    app.register_blueprint(blueprint)

    @app.url_defaults
    def version_static_urls(endpoint: str, values: dict) -> None:
        if endpoint == "static" and "v" not in values and values.get("filename") and app.static_folder:
            version = static_version(app.static_folder, values["filename"])
            if version:
                values["v"] = version

    @app.before_request
    def answer_not_modified():
        if request.method not in ("GET", "HEAD") or request.endpoint not in ETAG_ENDPOINTS:
            return None
        etag = current_etag()
        g.etag = etag
        header = request.headers.get("If-None-Match")
        if etag and header and _matches(header, etag):
            response = Response(status=304)
            response.headers["ETag"] = etag
            response.headers["Cache-Control"] = API_CACHE_CONTROL
            return response
        return None

    @app.after_request
    def add_cache_headers(response: Response) -> Response:
        if request.endpoint == "static" and response.status_code in (200, 304):
            version = request.args.get("v")
            filename = (request.view_args or {}).get("filename", "")
            if version and app.static_folder and version == static_version(app.static_folder, filename):
                response.headers["Cache-Control"] = VERSIONED_CACHE_CONTROL
            else:
                response.headers["Cache-Control"] = UNVERSIONED_CACHE_CONTROL
        elif request.endpoint in ETAG_ENDPOINTS and request.method in ("GET", "HEAD"):
            etag = g.get("etag")
            if etag and response.status_code == 200:
                response.headers["ETag"] = etag
                response.headers["Cache-Control"] = API_CACHE_CONTROL
            elif response.status_code != 304:
                response.headers.setdefault("Cache-Control", "no-store")
        return response


@blueprint.get("/robots.txt")
def robots():
    """Crawlers may read articles and the help page, not the endless filter and CSV URLs."""
    response = Response(ROBOTS_TXT, mimetype="text/plain")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@blueprint.get("/favicon.ico")
def favicon():
    """The site's icon (also linked from every page as ``/static/favicon.svg``)."""
    if current_app.static_folder is None:  # Flask(__name__) always has one; never None here
        raise RuntimeError("the app has no static folder")
    response = send_from_directory(current_app.static_folder, "favicon.ico", mimetype="image/vnd.microsoft.icon",
                                   max_age=86400)
    return response

