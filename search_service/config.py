"""Service settings: one declared table, loaded from defaults, a TOML file, the
environment and command-line overrides.

Every setting is declared exactly once, in :data:`SETTINGS`, with its type,
default, allowed range and help text (the Datasette model). Everything else --
the :class:`Settings` object, environment-variable names, the ``--help`` table
and the checked-in ``config.toml`` -- is derived from that table.

Precedence, lowest to highest (the Starlette model)::

    defaults  <  config.toml  <  SEARCH_SERVICE_<NAME> env vars  <  overrides

Paths: relative ``path`` values written in the TOML file are resolved against
the file's own folder, so a config file means the same thing whichever folder
the service is started from; relative paths from defaults, the environment and
overrides are resolved against ``cwd``. An empty path stays ``""`` and means
"use the built-in resource".

Every problem raises :class:`~search_service.errors.ConfigError` whose message
says where the bad value came from, the key, the value, what was expected and
how to fix it.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
import sys
import textwrap
import tomllib
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from search_service.errors import ConfigError

__all__ = [
    "CONFIG_ENV_VAR",
    "CONFIG_FILE_NAME",
    "ENV_PREFIX",
    "EffectiveSetting",
    "Origin",
    "RESERVED_ENV_VARS",
    "SETTINGS",
    "SETTINGS_BY_NAME",
    "Setting",
    "Settings",
    "default_settings",
    "explain_settings",
    "load_settings",
    "render_config_toml",
    "render_report",
    "SettingsReport",
    "settings_help",
]

#: Prefix of every environment variable this service reads.
ENV_PREFIX = "SEARCH_SERVICE_"
#: Environment variable naming the config file (beats ``./config.toml``).
CONFIG_ENV_VAR = "SEARCH_SERVICE_CONFIG"
#: File looked for in ``cwd`` when neither an argument nor the env var names one.
CONFIG_FILE_NAME = "config.toml"
#: ``SEARCH_SERVICE_*`` variables that are not settings but belong to other
#: modules (the config-file pointer itself, API tokens that must never be
#: written into a checked-in file). They are skipped, not reported as unknown.
RESERVED_ENV_VARS: frozenset[str] = frozenset({CONFIG_ENV_VAR})
#: Optional table name: ``[search_service]`` in the TOML file is accepted as
#: well as flat top-level keys, so the settings can share a file with others.
TOML_TABLE = "search_service"

SettingType = Literal["str", "int", "float", "bool", "path", "list"]
_TYPES: frozenset[str] = frozenset({"str", "int", "float", "bool", "path", "list"})

# Strings accepted for booleans from the environment / string overrides.
# TOML has real booleans, so the file accepts only true/false.
_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS = frozenset({"0", "false", "no", "off"})


@dataclasses.dataclass(frozen=True, slots=True)
class Setting:
    """The declaration of one setting: its name, type, default and help.

    ``type`` is one of ``"str"``, ``"int"``, ``"float"``, ``"bool"``,
    ``"path"`` (a string resolved to an absolute path, ``""`` = built-in) and
    ``"list"`` (a list of strings). ``min``/``max`` bound numbers (inclusive);
    ``choices`` restricts a string to a fixed set (matched case-insensitively,
    stored in the spelling given here). ``secret`` values are never shown (``search-service
    config`` masks them) and belong in the environment, not in a file.
    """

    name: str
    default: Any
    type: SettingType
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    secret: bool = False

    def __post_init__(self) -> None:
        # A broken declaration is a programming error, caught at import time.
        if self.type not in _TYPES:
            raise ValueError(f"setting {self.name!r}: unknown type {self.type!r}")
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"setting {self.name!r}: names are lower-case identifiers")
        if (self.min is not None or self.max is not None) and self.type not in ("int", "float"):
            raise ValueError(f"setting {self.name!r}: min/max only apply to numbers")
        if self.choices is not None and self.type != "str":
            raise ValueError(f"setting {self.name!r}: choices only apply to strings")
        # The default itself is checked by _check_declarations() at the end of
        # the module, once the checking helpers exist.

    @property
    def env_var(self) -> str:
        """The environment variable that sets this setting, e.g. ``SEARCH_SERVICE_PORT``."""
        return ENV_PREFIX + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("index_dir", "index", "path",
            "Data folder holding the index generations."),
    Setting("host", "127.0.0.1", "str",
            "Address the HTTP server listens on; 0.0.0.0 listens on every interface."),
    Setting("port", 8080, "int",
            "TCP port the HTTP server listens on.", min=1, max=65535),
    Setting("threads", 8, "int",
            "Waitress worker threads serving requests.", min=1, max=256),
    Setting("workers", 0, "int",
            "Server processes sharing the listening socket (`serve`); each has `threads` threads. "
            "0 = one per CPU core; 1 = a single process.", min=0, max=64),
    Setting("connection_limit", 500, "int",
            "Open connections per server process (`serve`). Within a tenth of it, connections idle "
            "for over a second are closed (oldest first) so new visitors are let in at once.",
            min=16, max=100_000),
    Setting("idle_timeout", 30.0, "float",
            "Seconds a connection may stay open with no request in progress (keep-alive, or "
            "nothing sent at all) before the server closes it.", min=1.0, max=3600.0),
    Setting("header_timeout", 10.0, "float",
            "Seconds a request's headers may take to arrive, from its first byte (a client "
            "trickling them is cut off: slowloris).", min=1.0, max=600.0),
    Setting("cache_dir", "index/.cache", "path",
            "Folder for jieba's cache and other derived files owned by the service."),
    Setting("user_dict", "", "path",
            "Extra jieba user dictionary (one word per line, optional frequency and "
            "part-of-speech tag); empty = only the built-in domain dictionary."),
    Setting("synonyms_file", "", "path",
            "Synonym groups file; empty = the built-in list."),
    Setting("default_category", "高新院新闻", "str",
            "Category given to page-text/HTML files that name none."),
    Setting("allow_untitled", False, "bool",
            "Accept records with an empty title instead of rejecting them."),
    Setting("index_workers", 0, "int",
            "Processes used for segmentation when indexing; 0 = all CPU cores.",
            min=0, max=64),
    Setting("index_memory_mb", 256, "int",
            "Index writer memory per process, in MB.", min=16, max=8192),
    Setting("keep_generations", 2, "int",
            "Index generations kept on disk (the published one included); older "
            "ones are deleted.", min=1, max=100),
    Setting("reload_interval", 2.0, "float",
            "Seconds between checks for a newly published index generation.",
            min=0, max=3600),
    Setting("max_query_length", 256, "int",
            "Longest accepted query, in characters.", min=1, max=10000),
    Setting("max_page_size", 100, "int",
            "Largest number of results per page a client may ask for.", min=1, max=1000),
    Setting("max_result_window", 10000, "int",
            "Deepest result reachable by paging (page x page size).", min=1, max=1000000),
    Setting("cache_entries", 1024, "int",
            "Cached search responses; 0 = no cache.", min=0, max=1000000),
    Setting("snippet_length", 120, "int",
            "Length of the highlighted snippet shown per hit, in characters.",
            min=20, max=2000),
    Setting("title_boost", 3.0, "float",
            "Weight of a title match relative to a body match.", min=0, max=100),
    Setting("bm25_k1", 1.2, "float",
            "BM25 term-frequency saturation; bench.relevance found 0.6-1.5 within a query or two.",
            min=0, max=10),
    Setting("bm25_b", 0.75, "float",
            "BM25 length normalization (0 = none, 1 = full).", min=0, max=1),
    Setting("correction", True, "bool",
            "Answer a query that has no exact match with its homophone or pinyin correction when that has "
            "(智惠城市 -> 智慧城市, kepu -> 科普), saying so; correct=0 in a request turns it off."),
    Setting("correction_fuzzy_pinyin", False, "bool",
            "Corrections also accept the southern confusions z/zh, c/ch, s/sh, n/l, -n/-ng "
            "(see docs/BENCHMARKS.md#correction for what it costs)."),
    Setting("cors_origins", [], "list",
            "Origins allowed to call the JSON API from browsers, e.g. "
            "https://www.example.org; empty = none."),
    Setting("csv_max_rows", 100000, "int",
            "Most rows one CSV export writes (streamed, a thousand at a time); past it the file's "
            "last line and the results page say so.", min=1, max=1000000),
    Setting("suggest_limit", 8, "int",
            "Most suggestions returned by the autocomplete endpoint (at most max_limit).", min=1, max=1000),
    Setting("max_limit", 50, "int",
            "Largest limit a client may ask of /api/suggest and /api/documents/<id>/similar.",
            min=1, max=1000),
    Setting("log_level", "INFO", "str",
            "Logging threshold.", choices=("DEBUG", "INFO", "WARNING", "ERROR")),
    Setting("api_tokens", [], "list",
            "Bearer tokens allowed to write (PUT/POST/DELETE /api/documents); empty = writes "
            "disabled. Set them in the environment (SEARCH_SERVICE_API_TOKENS=tok1,tok2), "
            "never in a file under version control.", secret=True),
    Setting("commit_delay", 1.0, "float",
            "Longest time, in seconds, the writer waits to gather more changes into one commit.",
            min=0, max=60),
    Setting("write_queue_max", 64, "int",
            "Write requests waiting for the writer before new ones get 503 Retry-After.",
            min=1, max=100000),
    Setting("write_batch_max", 1000, "int",
            "Most articles in one POST /api/documents batch.", min=1, max=1000000),
    Setting("write_body_max_mb", 16, "int",
            "Largest write request body, in megabytes.", min=1, max=1024),
    Setting("lock_timeout", 10.0, "float",
            "Seconds a writer waits for another process's index lock before giving up.",
            min=0, max=3600),
    Setting("rate_limit", "60 per 3 seconds", "str",
            "Per-client limit on the public endpoints (search, suggest, pages), in the limits "
            "library's notation; several limits separated by ';'. Empty = no limit. The default lets a "
            "burst of 60 through, 20 a second on average: a person typing never meets it."),
    Setting("export_rate_limit", "10 per minute", "str",
            "Per-client limit on CSV exports of results (/search.csv), on top of rate_limit: an "
            "export costs a hundred searches. Same notation; empty = only rate_limit."),
    Setting("article_rate_limit", "2 per second; 60 per minute", "str",
            "Per-client limit on article pages and article JSON (/doc/..., /api/documents/...), on "
            "top of rate_limit. Same notation; empty = only rate_limit."),
    Setting("costly_concurrency", 2, "int",
            "Exports and article pages served at once per worker; more wait up to 10 s for a turn, "
            "then get 503. Searches keep the other threads. 0 = no cap.", min=0, max=256),
    Setting("rate_limit_storage", "memory://", "str",
            "Where rate-limit counters live: memory:// (per process; `serve` with several workers "
            "shares them in a file of its own in its run folder) or a shared store such as redis://host:6379."),
    Setting("trusted_proxies", [], "list",
            "Addresses of reverse proxies whose X-Forwarded-For is believed; empty = use the "
            "connection's address."),
    Setting("max_query_terms", 32, "int",
            "Most words and phrases one query may have.", min=1, max=1000),
    Setting("max_prefix_terms", 512, "int",
            "Most index terms a prefix (word*) may expand to before the query is refused.",
            min=1, max=100000),
    Setting("max_suggest_length", 64, "int",
            "Longest text, in characters, the suggest endpoint accepts.", min=1, max=1000),
    Setting("max_categories", 20, "int",
            "Most category values one search may filter on (repeated category parameters); more is "
            "refused with a 400.", min=1, max=1000),
    Setting("max_id_length", 256, "int",
            "Longest accepted article id, in characters (ingest and write API).", min=1, max=4096),
    Setting("max_article_kb", 1024, "int",
            "Largest accepted article (title + body as UTF-8), in KB; larger ones are refused at "
            "ingest and by the write API.", min=1, max=65536),
    Setting("public_url", "", "str",
            "The site's public base URL (e.g. https://search.example.org/) used for absolute URLs "
            "such as /opensearch.xml; empty = from X-Forwarded-Host/-Proto of a trusted proxy, else "
            "the server's own address (never the request's Host header)."),
    Setting("access_log", True, "bool",
            "Write one line per request (method, path, status, duration, results) to stderr."),
    Setting("log_client_ip", False, "bool",
            "Include the client's address in access log lines."),
    Setting("analytics", True, "bool",
            "Record searches and result clicks (no IP addresses) for the staff analytics page."),
    Setting("analytics_db", "", "path",
            "SQLite file for search analytics; empty = analytics.sqlite3 in index_dir."),
    Setting("analytics_retention_days", 180, "int",
            "Days of search analytics kept; older rows are pruned.", min=1, max=36500),
    Setting("admin_password", "", "str",
            "Password for the staff pages (/admin/...) over HTTP basic auth, besides the API tokens; "
            "set it in the environment (SEARCH_SERVICE_ADMIN_PASSWORD), never in a committed file.",
            secret=True),
    # -- crawl (search-service crawl URL) --
    Setting("crawl_delay", 1.0, "float",
            "Seconds between two requests of a crawl (--delay); a longer Crawl-delay in robots.txt wins.",
            min=0, max=3600),
    Setting("crawl_max_pages", 20000, "int",
            "Most pages one crawl fetches (--max-pages); robots.txt and sitemaps not counted.", min=1,
            max=10_000_000),
    Setting("crawl_timeout", 20.0, "float",
            "Seconds to connect and between bytes of an answer; a page must be complete within 3x this.",
            min=0.1, max=600),
    Setting("crawl_max_page_bytes", 5_000_000, "int",
            "Largest page read (bytes, after decompression); larger pages are reported, not indexed.",
            min=1024, max=1_000_000_000),
    Setting("crawl_retries", 2, "int",
            "Extra attempts for a page that timed out or answered 5xx/429, with back-off.", min=0, max=10),
    Setting("crawl_retry_backoff", 2.0, "float",
            "Seconds before the first retry; doubled for each next one (Retry-After wins, up to 120 s).",
            min=0, max=600),
    Setting("crawl_commit_seconds", 30.0, "float",
            "Longest time an incremental crawl holds fetched articles before committing them (it also commits "
            "every 500): a crawl killed half-way keeps what it fetched up to its last commit.", min=0.1, max=3600),
    Setting("crawl_max_links_per_page", 1000, "int",
            "Most links followed and remembered per page; the others are counted in the crawl's summary.",
            min=1, max=100_000),
    Setting("crawl_max_sitemap_urls", 50000, "int",
            "Most URLs taken from one sitemap file (50,000 is the sitemaps.org limit); the others are counted "
            "in the crawl's summary.", min=1, max=1_000_000),
    Setting("crawl_www_twin", True, "bool",
            "The start URL's www. twin (example.org <-> www.example.org, same port) is part of the site."),
    Setting("crawl_allowed_hosts", [], "list",
            'Other hosts that are part of the site, "host" or "host:port" each, e.g. "news.achie.org"; a '
            "start URL that redirects to any other host stops the crawl."),
    Setting("crawl_user_agent", "", "str",
            "User-Agent of the crawler; empty = search-service-crawler/VERSION (+site search indexer; "
            "respects robots.txt). robots.txt groups are matched against it."),
    Setting("crawl_state_db", "", "path",
            "SQLite file of crawl state (ETag, Last-Modified, hashes); empty = crawl.sqlite3 in index_dir."),
    Setting("crawl_category_map", [], "list",
            'URL path prefix to category, "prefix=category" each, e.g. "/news/gxq/=高新区新闻"; the '
            "longest matching prefix beats the page's breadcrumb."),
    Setting("crawl_title_selector", "", "str",
            "CSS selector of the article title when the template differs from the site's (empty = built-in)."),
    Setting("crawl_body_selector", "", "str",
            "CSS selector of the article's content element (empty = .content, <article>, <main>, <body>)."),
    Setting("crawl_date_selector", "", "str",
            "CSS selector of the element holding the date (its datetime/content attribute or its 日期: text)."),
    Setting("crawl_category_selector", "", "str",
            "CSS selector of the element naming the category (a breadcrumb's last category is taken)."),
    Setting("crawl_remove_selector", "", "str",
            "CSS selector of elements to drop from the body (share buttons, ads), besides the built-in ones."),
)

#: The same table keyed by name.
SETTINGS_BY_NAME: Mapping[str, Setting] = {s.name: s for s in SETTINGS}


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Settings:
    """The effective settings: one read-only attribute per entry of :data:`SETTINGS`.

    Paths are absolute strings (or ``""`` = built-in), lists are tuples so the
    object stays immutable. ``config_path`` is the file that was read, or None;
    it takes no part in equality (same values = same settings).

    The fields below only give attributes and type hints; names, defaults and
    validation come from :data:`SETTINGS` (an import-time check keeps the two
    in step). Build instances with :func:`load_settings`,
    :func:`default_settings` or :meth:`replace`.
    """

    index_dir: str
    host: str
    port: int
    threads: int
    workers: int
    connection_limit: int
    idle_timeout: float
    header_timeout: float
    cache_dir: str
    user_dict: str
    synonyms_file: str
    default_category: str
    allow_untitled: bool
    index_workers: int
    index_memory_mb: int
    keep_generations: int
    reload_interval: float
    max_query_length: int
    max_page_size: int
    max_result_window: int
    cache_entries: int
    snippet_length: int
    title_boost: float
    bm25_k1: float
    bm25_b: float
    correction: bool
    correction_fuzzy_pinyin: bool
    cors_origins: tuple[str, ...]
    csv_max_rows: int
    suggest_limit: int
    max_limit: int
    log_level: str
    api_tokens: tuple[str, ...]
    commit_delay: float
    write_queue_max: int
    write_batch_max: int
    write_body_max_mb: int
    lock_timeout: float
    rate_limit: str
    export_rate_limit: str
    article_rate_limit: str
    costly_concurrency: int
    rate_limit_storage: str
    trusted_proxies: tuple[str, ...]
    max_query_terms: int
    max_prefix_terms: int
    max_suggest_length: int
    max_categories: int
    max_id_length: int
    max_article_kb: int
    public_url: str
    access_log: bool
    log_client_ip: bool
    analytics: bool
    analytics_db: str
    analytics_retention_days: int
    admin_password: str
    crawl_delay: float
    crawl_max_pages: int
    crawl_timeout: float
    crawl_max_page_bytes: int
    crawl_retries: int
    crawl_retry_backoff: float
    crawl_commit_seconds: float
    crawl_max_links_per_page: int
    crawl_max_sitemap_urls: int
    crawl_www_twin: bool
    crawl_allowed_hosts: tuple[str, ...]
    crawl_user_agent: str
    crawl_state_db: str
    crawl_category_map: tuple[str, ...]
    crawl_title_selector: str
    crawl_body_selector: str
    crawl_date_selector: str
    crawl_category_selector: str
    crawl_remove_selector: str
    config_path: Path | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self) -> None:
        # Direct construction gets the same type and range checks as loading,
        # so no code path can produce an out-of-range Settings.
        for setting in SETTINGS:
            value = getattr(self, setting.name)
            _check_typed_value(setting, value)
            # Normalise the lenient forms (list for tuple, int for float) so
            # the object stays immutable and the types match the annotations.
            if setting.type == "list" and not isinstance(value, tuple):
                object.__setattr__(self, setting.name, tuple(value))
            elif setting.type == "float" and not isinstance(value, float):
                object.__setattr__(self, setting.name, float(value))

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied, validated like command-line overrides.

        Values may be typed (``port=9000``) or strings parsed like environment
        variables (``port="9000"``); relative paths resolve against the current
        directory. Unknown names and bad values raise :class:`ConfigError`.
        """
        source = _Source("replace", "Settings.replace()", Path.cwd())
        coerced: dict[str, Any] = {}
        for name, raw in changes.items():
            setting = _lookup(name, source)
            coerced[name] = _coerce(setting, raw, source)
        replaced = dataclasses.replace(self, **coerced)
        _check_relations(replaced.as_dict())
        return replaced

    def as_dict(self) -> dict[str, Any]:
        """Every setting as a plain JSON-ready dict (lists as lists, no ``config_path``)."""
        return {
            s.name: list(value) if isinstance(value := getattr(self, s.name), tuple) else value
            for s in SETTINGS
        }


_PY_TYPE_NAMES: Mapping[str, str] = {
    "str": "str", "path": "str", "int": "int", "float": "float", "bool": "bool",
    "list": "tuple[str, ...]",
}


def _check_declarations() -> None:
    """Fail at import if a default is invalid or :class:`Settings` drifts from :data:`SETTINGS`."""
    for setting in SETTINGS:
        _check_typed_value(setting, setting.default)
    fields = [f for f in dataclasses.fields(Settings) if f.name != "config_path"]
    declared = [s.name for s in SETTINGS]
    if [f.name for f in fields] != declared:
        raise RuntimeError(
            f"Settings fields {[f.name for f in fields]} do not match SETTINGS {declared}"
        )
    for field in fields:
        expected = _PY_TYPE_NAMES[SETTINGS_BY_NAME[field.name].type]
        if field.type != expected:
            raise RuntimeError(f"Settings.{field.name} is annotated {field.type}, expected {expected}")


# --------------------------------------------------------------------------- #
# Value checking and coercion
# --------------------------------------------------------------------------- #

SourceKind = Literal["default", "file", "env", "override", "replace"]


@dataclasses.dataclass(frozen=True, slots=True)
class _Source:
    """Where a raw value came from: drives parsing, path base and error wording."""

    kind: SourceKind
    label: str  # file path, env var name, or a description
    base: Path  # folder that relative paths from this source resolve against


def _range_text(setting: Setting) -> str:
    """``" from 1 to 65535"`` / ``" >= 0"`` / ``""`` for a number setting."""
    lo, hi = setting.min, setting.max
    fmt = (lambda v: str(int(v))) if setting.type == "int" else (lambda v: repr(float(v)))
    if lo is not None and hi is not None:
        return f" from {fmt(lo)} to {fmt(hi)}"
    if lo is not None:
        return f" >= {fmt(lo)}"
    if hi is not None:
        return f" <= {fmt(hi)}"
    return ""


def _expected(setting: Setting, textual: bool) -> str:
    """What a valid value looks like; ``textual`` when it is parsed from a string."""
    if setting.type == "int":
        return "an integer" + _range_text(setting)
    if setting.type == "float":
        return "a number" + _range_text(setting)
    if setting.type == "bool":
        if textual:
            return "a boolean: one of 1/0, true/false, yes/no, on/off"
        return "a boolean: true or false"
    if setting.type == "list":
        if textual:
            return "comma-separated values"
        return "an array of strings"
    if setting.type == "path":
        return 'a path string ("" = built-in)'
    if setting.choices:
        return "one of " + ", ".join(repr(c) for c in setting.choices)
    return "a string"


def _toml_value(value: Any) -> str:
    """Render a setting value as a TOML literal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    # JSON string escapes (\" \\ \n \uXXXX) are all valid TOML basic-string escapes.
    return json.dumps(str(value), ensure_ascii=False)


def _example(setting: Setting, kind: SourceKind) -> str:
    """An example valid value, written the way this source needs it."""
    if setting.type == "list" and not setting.default:
        sample: Any = ["https://www.example.org", "https://example.com"]
    else:
        sample = setting.default
    if kind == "env":
        if isinstance(sample, bool):
            return "true" if sample else "false"
        if isinstance(sample, list):
            return ",".join(sample)
        return str(sample)
    if kind == "file":
        return _toml_value(sample)
    return repr(sample)


def _invalid(setting: Setting, value: Any, source: _Source, problem: str) -> ConfigError:
    """Build the error for a bad value: where, key, value, expectation and fix."""
    name = setting.name
    # Env values, and string overrides, are parsed: describe the text syntax.
    textual = source.kind == "env" or (
        source.kind in ("override", "replace") and isinstance(value, str)
    )
    expected = _expected(setting, textual)
    if source.kind == "file":
        hint = ""
        if isinstance(value, str) and setting.type in ("int", "float", "bool"):
            hint = " (TOML numbers and booleans are written without quotes)"
        message = (
            f"{source.label}: {name} = {value!r} is invalid: {problem}; expected "
            f"{expected}{hint}. Fix: write `{name} = {_example(setting, 'file')}` in "
            f"that file, or delete the line to use the default."
        )
    elif source.kind == "env":
        message = (
            f"environment variable {source.label}={value!r} is invalid for setting "
            f"{name!r}: {problem}; expected {expected}. Fix: set "
            f"{source.label}={_example(setting, 'env')}, or unset it."
        )
    else:
        message = (
            f"{source.label}: {name}={value!r} is invalid: {problem}; expected "
            f"{expected}. Fix: pass e.g. {name}={_example(setting, source.kind)}, "
            f"or leave it out."
        )
    return ConfigError(message, param=name)


def _lookup(name: str, source: _Source, *, display: str | None = None) -> Setting:
    """The declaration for ``name``, or a ConfigError suggesting the closest name."""
    setting = SETTINGS_BY_NAME.get(name)
    if setting is not None:
        return setting
    shown = display if display is not None else name
    close = difflib.get_close_matches(name.lower(), list(SETTINGS_BY_NAME), n=1, cutoff=0.6)
    if source.kind == "env":
        where = f"unknown environment variable {shown}"
        suggestion = close and f"Did you mean {SETTINGS_BY_NAME[close[0]].env_var}?"
        fix = "Fix: rename or unset it"
    elif source.kind == "file":
        where = f"{source.label}: unknown setting {shown!r}"
        suggestion = close and f"Did you mean {close[0]!r}?"
        fix = "Fix: rename or delete it"
    else:
        where = f"{source.label}: unknown setting {shown!r}"
        suggestion = close and f"Did you mean {close[0]!r}?"
        fix = "Fix: use a known name"
    known = "" if close else " Known settings: " + ", ".join(SETTINGS_BY_NAME) + "."
    parts = [f"{where}.", suggestion or "", f"{fix}.{known}"]
    raise ConfigError(" ".join(p for p in parts if p), param=shown)


def _check_range(setting: Setting, value: int | float, source: _Source, raw: Any) -> None:
    """Enforce finiteness and ``min``/``max`` on a number."""
    if isinstance(value, float) and not math.isfinite(value):
        raise _invalid(setting, raw, source, "not a finite number")
    if (setting.min is not None and value < setting.min) or (
        setting.max is not None and value > setting.max
    ):
        raise _invalid(setting, raw, source, "out of range")


def _coerce(setting: Setting, raw: Any, source: _Source) -> Any:
    """Turn a raw value from ``source`` into the typed value, or raise ConfigError.

    The file and typed overrides must already have the right type (an int is
    fine for a float); strings from the environment -- and string overrides,
    as a command line produces -- are parsed.
    """
    parse_text = source.kind == "env" or (
        source.kind in ("override", "replace") and isinstance(raw, str)
    )
    kind = setting.type

    if kind in ("int", "float"):
        value: Any
        if parse_text:
            text = str(raw).strip()
            try:
                value = int(text) if kind == "int" else float(text)
            except ValueError:
                raise _invalid(setting, raw, source, "not a number") from None
        # bool is a subclass of int: `port = true` must not pass as 1.
        elif isinstance(raw, bool) or not isinstance(
            raw, int if kind == "int" else (int, float)
        ):
            raise _invalid(setting, raw, source, f"wrong type {type(raw).__name__}")
        else:
            value = raw if kind == "int" else float(raw)
        _check_range(setting, value, source, raw)
        return value

    if kind == "bool":
        if parse_text:
            word = str(raw).strip().lower()
            if word in _TRUE_WORDS:
                return True
            if word in _FALSE_WORDS:
                return False
            raise _invalid(setting, raw, source, "not a boolean")
        if not isinstance(raw, bool):
            raise _invalid(setting, raw, source, f"wrong type {type(raw).__name__}")
        return raw

    if kind == "list":
        if parse_text:
            items = str(raw).split(",")
        elif isinstance(raw, (list, tuple)) and all(isinstance(i, str) for i in raw):
            items = list(raw)
        else:
            raise _invalid(setting, raw, source, f"wrong type {type(raw).__name__}")
        # Blanks are trimmed and empty items dropped, so "a, b," == ["a", "b"].
        return tuple(item.strip() for item in items if item.strip())

    if kind == "path":
        if isinstance(raw, os.PathLike) and source.kind != "file":
            raw = os.fspath(raw)
        if not isinstance(raw, str):
            raise _invalid(setting, raw, source, f"wrong type {type(raw).__name__}")
        return _resolve_path(raw, source.base)

    # str
    if not isinstance(raw, str):
        raise _invalid(setting, raw, source, f"wrong type {type(raw).__name__}")
    if setting.choices is not None:
        for choice in setting.choices:
            if raw.strip().lower() == choice.lower():
                return choice
        raise _invalid(setting, raw, source, "not an allowed value")
    return raw


def _resolve_path(raw: str, base: Path) -> str:
    """``""`` stays ``""``; otherwise ``~`` is expanded and the path made absolute."""
    if raw.strip() == "":
        return ""
    # abspath normalises ".." without touching the disk (the folder may not
    # exist yet: the indexer creates it).
    return os.path.abspath(os.path.join(base, os.path.expanduser(raw)))


def _check_typed_value(setting: Setting, value: Any) -> None:
    """Check an already-typed value (a default, or a field of Settings)."""
    kind = setting.type
    if kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "list":
        ok = isinstance(value, (list, tuple)) and all(isinstance(i, str) for i in value)
    else:
        ok = isinstance(value, str)
    source = _Source("default", "Settings()", Path.cwd())
    if not ok:
        raise _invalid(setting, value, source, f"wrong type {type(value).__name__}")
    if kind in ("int", "float"):
        _check_range(setting, value, source, value)
    if setting.choices is not None and value not in setting.choices:
        raise _invalid(setting, value, source, "not an allowed value")


# --------------------------------------------------------------------------- #
# Loading
# --------------------------------------------------------------------------- #


def _choose_file(
    config_path: str | os.PathLike[str] | None, environ: Mapping[str, str], cwd: Path
) -> tuple[Path | None, str]:
    """Pick the config file: argument, else $SEARCH_SERVICE_CONFIG, else ./config.toml (and say which)."""
    if config_path is not None:
        path = cwd / os.path.expanduser(os.fspath(config_path))
        if not path.is_file():
            raise ConfigError(
                f"config file {os.fspath(config_path)!r} (resolved to {str(path)!r}) "
                f"{'is not a file' if path.exists() else 'does not exist'}. Fix: "
                f"correct the path, or create it from the repository's config.toml.",
                param="config",
            )
        return path.resolve(), "--config"
    named = environ.get(CONFIG_ENV_VAR, "").strip()
    if named:
        path = cwd / os.path.expanduser(named)
        if not path.is_file():
            raise ConfigError(
                f"environment variable {CONFIG_ENV_VAR}={named!r} names a config file "
                f"that {'is not a file' if path.exists() else 'does not exist'} "
                f"(resolved to {str(path)!r}). Fix: correct the path, or unset "
                f"{CONFIG_ENV_VAR} to use ./{CONFIG_FILE_NAME} if present.",
                param="config",
            )
        return path.resolve(), f"${CONFIG_ENV_VAR}"
    path = cwd / CONFIG_FILE_NAME
    return (path.resolve(), f"./{CONFIG_FILE_NAME}") if path.is_file() else (None, "")


def _read_text(path: Path) -> str:
    """The config file's text."""
    try:
        # utf-8-sig: tolerate the BOM some Windows editors write.
        return path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read config file: {exc.strerror or exc}. Fix: check the "
            f"path and its permissions.",
            param="config",
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: config file is not valid UTF-8 (byte {exc.start}). Fix: save it "
            f"as UTF-8.",
            param="config",
        ) from exc


def _parse_toml(path: Path, text: str) -> dict[str, Any]:
    """Parse ``text`` (of ``path``) as TOML and return the flat ``{key: value}`` settings table."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already ends with "(at line N, column M)".
        raise ConfigError(
            f"{path}: TOML syntax error: {exc}. Fix: correct that line (strings need "
            f'double quotes, e.g. host = "127.0.0.1"; one key = value per line).',
            param="config",
        ) from exc

    table = data.pop(TOML_TABLE, None)
    if table is None:
        return data
    if not isinstance(table, dict):
        raise ConfigError(
            f"{path}: {TOML_TABLE} = {table!r} is invalid: expected a table "
            f"([{TOML_TABLE}]) or flat key = value lines. Fix: remove that line.",
            param=TOML_TABLE,
        )
    for key in table:
        if key in data:
            raise ConfigError(
                f"{path}: {key!r} is set both at top level and in [{TOML_TABLE}]. "
                f"Fix: keep only one of them.",
                param=key,
            )
    return {**data, **table}


def _key_lines(text: str) -> dict[str, int]:
    """The line (1-based) setting each top-level or ``[search_service]`` key: for ``search-service config``.

    A light scan, not a parser (the file has already parsed): ``key =`` at the start of a line, outside
    other tables; the first occurrence wins.
    """
    lines: dict[str, int] = {}
    table: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"\s*\[\s*([^\]]*?)\s*\]\s*(#.*)?$", line)
        if header:
            table = header.group(1).strip('"\'')
            continue
        if table not in (None, TOML_TABLE):
            continue
        match = re.match(r"""\s*(?:"([^"]+)"|'([^']+)'|([A-Za-z0-9_-]+))\s*=""", line)
        if match:
            lines.setdefault(next(g for g in match.groups() if g is not None), number)
    return lines


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> Settings:
    """Load the effective settings: defaults < TOML file < environment < overrides.

    ``config_path``: the TOML file to read (must exist). When None,
    ``$SEARCH_SERVICE_CONFIG`` names it, else ``config.toml`` in ``cwd`` is used
    if present, else no file is read.
    ``environ``: the environment to read (default ``os.environ``); injectable
    so tests need not touch the process environment.
    ``overrides``: command-line values by setting name; None values are
    ignored so an unset flag never masks a lower layer. Strings are parsed
    like environment values.
    ``cwd``: base for the file lookup and for relative paths that do not come
    from the file (default: the current directory).

    Raises :class:`ConfigError` for a missing named file, TOML syntax errors,
    unknown keys and bad values.
    """
    return _load(config_path, environ, overrides, cwd, {}).settings


@dataclasses.dataclass(frozen=True, slots=True)
class Origin:
    """Where one layer's value of a setting came from."""

    kind: SourceKind  # "default", "file", "env" or "override" (a command-line flag)
    label: str  # "default", the file's path, the variable's name, or the flag
    line: int | None = None  # the file's line that sets it

    def __str__(self) -> str:
        if self.kind == "file":
            return f"{self.label}:{self.line}" if self.line else self.label
        if self.kind == "env":
            return f"env {self.label}"
        return self.label


@dataclasses.dataclass(frozen=True, slots=True)
class EffectiveSetting:
    """One setting's effective value, the layer it came from and the lower layers it overrode."""

    setting: Setting
    value: Any
    origin: Origin
    overridden: tuple[Origin, ...] = ()  # lower layers (the default not included) that also set it

    @property
    def shown(self) -> str:
        """The value as TOML, with secrets and passwords inside URLs masked."""
        return _toml_value(_masked(self.setting, self.value))

    def to_json(self) -> dict[str, Any]:
        value = _masked(self.setting, self.value)
        return {
            "name": self.setting.name,
            "value": list(value) if isinstance(value, tuple) else value,
            "source": self.origin.kind if self.origin.kind != "override" else "command_line",
            "from": str(self.origin),
            "file": self.origin.label if self.origin.kind == "file" else None,
            "line": self.origin.line,
            "overrides": [str(o) for o in self.overridden],
            "default": self.setting.default,
            "env": self.setting.env_var,
            "type": _type_text(self.setting),
            "secret": self.setting.secret,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class SettingsReport:
    """:func:`explain_settings`: the settings, the file read (and why that one), every setting's origin."""

    settings: Settings
    config_path: Path | None
    config_chosen_by: str  # "--config", "$SEARCH_SERVICE_CONFIG", "./config.toml" or "" (no file)
    entries: tuple[EffectiveSetting, ...]

    def secrets_in_file(self) -> list[EffectiveSetting]:
        """Secrets whose effective value or an overridden one is written in the config file."""
        return [e for e in self.entries if e.setting.secret and any(
            o.kind == "file" for o in (e.origin, *e.overridden))]


def explain_settings(
    config_path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    flags: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> SettingsReport:
    """:func:`load_settings`, and where each value came from (``search-service config``).

    ``flags`` names the command-line flag of each override (``{"port": "--port"}``) for the report.
    """
    return _load(config_path, environ, overrides, cwd, flags or {})


def _load(
    config_path: str | os.PathLike[str] | None,
    environ: Mapping[str, str] | None,
    overrides: Mapping[str, Any] | None,
    cwd: str | os.PathLike[str] | None,
    flags: Mapping[str, str],
) -> SettingsReport:
    env: Mapping[str, str] = os.environ if environ is None else environ
    base = Path(os.path.abspath(cwd if cwd is not None else os.getcwd()))

    defaults = _Source("default", "default", base)
    values: dict[str, Any] = {s.name: _coerce(s, s.default, defaults) for s in SETTINGS}
    layers: dict[str, list[Origin]] = {s.name: [Origin("default", "default")] for s in SETTINGS}

    path, chosen_by = _choose_file(config_path, env, base)
    if path is not None:
        source = _Source("file", str(path), path.parent)
        text = _read_text(path)
        lines = _key_lines(text)
        for key, raw in _parse_toml(path, text).items():
            setting = _lookup(key, source)
            values[key] = _coerce(setting, raw, source)
            layers[key].append(Origin("file", str(path), lines.get(key)))

    # Sorted so that with several bad variables the reported one is stable.
    for var in sorted(env):
        if not var.startswith(ENV_PREFIX) or var in RESERVED_ENV_VARS:
            continue
        source = _Source("env", var, base)
        setting = _lookup(var[len(ENV_PREFIX):].lower(), source, display=var)
        values[setting.name] = _coerce(setting, env[var], source)
        layers[setting.name].append(Origin("env", var))

    for key, raw in (overrides or {}).items():
        if raw is None:
            continue
        source = _Source("override", "command-line override", base)
        values[key] = _coerce(_lookup(key, source), raw, source)
        layers[key].append(Origin("override", flags.get(key) or "command line"))

    _check_relations(values)
    entries = tuple(
        EffectiveSetting(s, values[s.name], layers[s.name][-1], tuple(reversed(layers[s.name][1:-1])))
        for s in SETTINGS
    )
    return SettingsReport(Settings(**values, config_path=path), path, chosen_by, entries)


_URL_PASSWORD = re.compile(r"(?<=://)([^/@:\s]*):[^/@\s]+@")


def _masked(setting: Setting, value: Any) -> Any:
    """``value`` fit to show: a secret's characters hidden, a password inside a URL too."""
    if setting.secret:
        if isinstance(value, tuple):
            return tuple("****" for _ in value)
        return "****" if value else value
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\1:****@", value)
    if isinstance(value, tuple):
        return tuple(_URL_PASSWORD.sub(r"\1:****@", item) for item in value)
    return value


def _check_relations(values: Mapping[str, Any]) -> None:
    """Settings bounded by another setting (each is valid alone, the pair is not)."""
    if values["suggest_limit"] > values["max_limit"]:
        raise ConfigError(
            f"suggest_limit = {values['suggest_limit']} is out of range: at most max_limit = "
            f"{values['max_limit']}, the largest limit a client may ask for. Fix: lower suggest_limit "
            "or raise max_limit.",
            param="suggest_limit",
        )


def default_settings(*, cwd: str | os.PathLike[str] | None = None) -> Settings:
    """The declared defaults alone (no file, no environment), paths resolved against ``cwd``."""
    source = _Source("default", "default", Path(os.path.abspath(cwd if cwd is not None else os.getcwd())))
    return Settings(**{s.name: _coerce(s, s.default, source) for s in SETTINGS})


# --------------------------------------------------------------------------- #
# Documentation: --help table and config.toml
# --------------------------------------------------------------------------- #


def _type_text(setting: Setting) -> str:
    """Short type description with range/choices, e.g. ``int 1..65535``."""
    if setting.type in ("int", "float") and (setting.min is not None or setting.max is not None):
        lo = "" if setting.min is None else _num(setting, setting.min)
        hi = "" if setting.max is None else _num(setting, setting.max)
        return f"{setting.type} {lo}..{hi}"
    if setting.choices:
        return "|".join(setting.choices)
    return setting.type


def _num(setting: Setting, value: float) -> str:
    return str(int(value)) if setting.type == "int" else repr(float(value))


def _display_width(text: str) -> int:
    """Terminal columns taken by ``text`` (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _display_width(text))


def settings_help() -> str:
    """A plain-text table of every setting: name, type, default, env var, then help."""
    header = ("NAME", "TYPE", "DEFAULT", "ENVIRONMENT VARIABLE")
    rows = [(s.name, _type_text(s), _toml_value(s.default), s.env_var) for s in SETTINGS]
    widths = [max(_display_width(r[i]) for r in [header, *rows]) for i in range(3)]
    lines = [
        "Settings (precedence: defaults < config.toml < environment < command line).",
        f"The config file is --config, else ${CONFIG_ENV_VAR}, else ./{CONFIG_FILE_NAME}.",
        "Relative paths in the file are relative to the file's folder.",
        "",
    ]

    def fmt(row: tuple[str, str, str, str]) -> str:
        return "  ".join(_pad(cell, widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3]

    lines.append(fmt(header))
    for setting, row in zip(SETTINGS, rows):
        lines.append(fmt(row))
        lines.extend(textwrap.wrap(setting.help, width=76, initial_indent="    ",
                                   subsequent_indent="    "))
    return "\n".join(lines) + "\n"


def render_report(report: SettingsReport, names: list[str] | None = None) -> str:
    """``search-service config``: each setting's effective value and where it came from.

    ``names``: only these settings (all when None). Secrets are masked (see :func:`_masked`).
    """
    if report.config_path is None:
        file_line = (f"Config file: none (no --config, no ${CONFIG_ENV_VAR}, no ./{CONFIG_FILE_NAME} in "
                     f"{os.getcwd()})")
    else:
        file_line = f"Config file: {report.config_path} (chosen by {report.config_chosen_by})"
    lines = [
        file_line,
        f"Precedence: defaults < config file < {ENV_PREFIX}<NAME> environment variables < command-line flags.",
        "Secrets are shown as ****. Every setting's type, default and help: search-service config --defaults.",
        "",
    ]
    wanted = set(names) if names else None
    entries = [e for e in report.entries if wanted is None or e.setting.name in wanted]
    rows = [("NAME", "VALUE", "SOURCE")]
    for entry in entries:
        source = str(entry.origin)
        if entry.overridden:
            source += " (over " + ", ".join(str(o) for o in entry.overridden) + ")"
        rows.append((entry.setting.name, entry.shown, source))
    widths = [max(_display_width(row[i]) for row in rows) for i in range(2)]
    for row in rows:
        lines.append(f"{_pad(row[0], widths[0])}  {_pad(row[1], widths[1])}  {row[2]}".rstrip())
    for entry in report.secrets_in_file():
        where = next(o for o in (entry.origin, *entry.overridden) if o.kind == "file")
        lines.append(f"warning: {entry.setting.name} is written in {where}: secrets belong in the environment "
                     f"({entry.setting.env_var}), never in a file that may be committed or read by others.")
    return "\n".join(lines) + "\n"


def render_config_toml() -> str:
    """A complete ``config.toml``: every setting at its default, documented in place."""
    out = [
        "# search_service configuration.",
        "#",
        "# Every setting is listed at its default value. Precedence, lowest first:",
        f"#   defaults < this file < {ENV_PREFIX}<NAME> environment variables",
        "#   < command-line options.",
        f"# The file used is --config, else ${CONFIG_ENV_VAR}, else ./{CONFIG_FILE_NAME}.",
        "# Relative paths below are relative to the folder holding this file;",
        '# an empty path ("") means the built-in resource.',
        "#",
        "# Generated by search_service.config.render_config_toml():",
        "#   python -m search_service.config > config.toml",
        "",
    ]
    for setting in SETTINGS:
        out.extend(textwrap.wrap(setting.help, width=78, initial_indent="# ",
                                 subsequent_indent="# "))
        kind = _type_text(setting)
        if setting.type == "path":
            kind += ", relative to this file's folder"
        out.append(
            f"# Type: {kind}. Default: {_toml_value(setting.default)}. "
            f"Env: {setting.env_var}."
        )
        out.append(f"{setting.name} = {_toml_value(setting.default)}")
        out.append("")
    return "\n".join(out)


_check_declarations()


if __name__ == "__main__":  # pragma: no cover - tiny generator entry point
    # `python -m search_service.config` prints a fresh config.toml;
    # `python -m search_service.config --help` prints the settings table.
    sys.stdout.write(settings_help() if "--help" in sys.argv[1:] else render_config_toml())
