"""Shared fixtures: the jieba cache, an index of the bundled samples, the app, a live waitress server,
engines over small indexes, one Chromium with a tab per test, and the widget on another origin.

Plain helpers (settings, index builds, servers, CLI runs) are in ``helpers.py``; browser tabs in
``browser_tabs.py``.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from search_service.article import Article
from search_service.config import Settings
from search_service.engine import indexer
from search_service.engine.searcher import EngineOptions, SearchEngine
from search_service.engine.store import IndexStore
from search_service.text import analysis

from .browser_tabs import CHROMIUM, LAUNCH_ARGS, Tab, host_page, open_tab
from .helpers import SAMPLES, SHARED, LiveServer, build_index, free_port, make_settings

#: The packages the browser tests need, as `make test` installs them when run as root.
BROWSER_PACKAGES = "chromium fonts-wqy-microhei"


def pytest_addoption(parser) -> None:
    group = parser.getgroup("search_service")
    group.addoption("--require-browser", action="store_true",
                    help="fail, never skip, the browser tests when Chromium or Playwright is missing "
                    "(`make test` passes it; so does CI=true)")
    group.addoption("--chromium", default=str(CHROMIUM), metavar="PATH",
                    help=f"the Chromium the browser tests drive (default {CHROMIUM}, Debian's package)")


# Skips that mean "this machine cannot run part of the suite", summed up at the end of the run in one
# loud line each (a reason matched by the pattern), with how to run them.
_SKIP_KINDS = (
    ("browser", re.compile(r"chromium|playwright", re.I), "browser test(s) SKIPPED: {reason}"),
    ("shared", re.compile(r"\bshared\b"),
     "test(s) SKIPPED because ../shared is absent (looked for " + str(SHARED) + "): corpora, seed page and "
     "evaluation sets. Put the folder beside the checkout, or name it with BENCH_SHARED_DIR=PATH, to run them"),
    ("nginx", re.compile(r"\bnginx\b"),
     "deployment test(s) SKIPPED: {reason}"),
)


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Say loudly, at the very end (after the short summary), which parts of the suite this machine
    skipped and why."""
    result = yield
    counts: Counter[str] = Counter()
    reasons: dict[str, str] = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = _skip_reason(report)
        for kind, pattern, _ in _SKIP_KINDS:
            if pattern.search(reason):
                counts[kind] += 1
                reasons.setdefault(kind, reason)
                break
    for kind, _, text in _SKIP_KINDS:
        if counts[kind]:
            terminalreporter.write_sep("!", f"{counts[kind]} " + text.format(reason=reasons[kind]),
                                       yellow=True, bold=True)
    return result


def pytest_collection_modifyitems(config, items) -> None:
    """With ``-n`` (pytest-xdist, ``--dist loadgroup``): tests that start processes run on one
    worker, one after another, and browser tests on one worker (one Chromium): their timing,
    CPU and port checks never compete with each other; everything else spreads over the
    other workers."""
    for item in items:
        if item.get_closest_marker("processes"):
            item.add_marker(pytest.mark.xdist_group("processes"))
        elif item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.xdist_group("browser"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the checkout; tests that need it skip cleanly without it."""
    if not SHARED.is_dir():
        pytest.skip("../shared (corpora, seed page, eval sets) is not present")
    return SHARED


@pytest.fixture(scope="session")
def jieba_cache(tmp_path_factory) -> Path:
    """One jieba cache folder for the whole run, owned by the tests."""
    path = tmp_path_factory.mktemp("jieba-cache")
    analysis.initialize(path)
    return path


# --------------------------------------------------------------------------- engines


@pytest.fixture()
def make_engine(tmp_path_factory, jieba_cache) -> Iterator[Callable[..., SearchEngine]]:
    """``make_engine(articles, **options)``: a fresh index of ``articles`` and an engine on it.

    Engines are closed after the test (non-compound segments keep files open until then).
    Options are :class:`EngineOptions` fields; ``reload_interval`` is 0 unless given.
    """
    engines: list[SearchEngine] = []

    def make(articles: Iterable[Article], **options) -> SearchEngine:
        store = IndexStore(tmp_path_factory.mktemp("engine-index"))
        indexer.rebuild(store, articles, procs=1)
        options.setdefault("reload_interval", 0)
        engine = SearchEngine(store.root, EngineOptions(**options))
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


# --------------------------------------------------------------------------- the sample app and server


@pytest.fixture(scope="session")
def sample_settings(tmp_path_factory, jieba_cache) -> Settings:
    """Settings for an index of the bundled samples/ (built once per run)."""
    index_dir = tmp_path_factory.mktemp("sample-index")
    build_index(index_dir, [SAMPLES], default_category="高新院新闻")
    return make_settings(index_dir, jieba_cache, cors_origins=("http://127.0.0.1:1",))


@pytest.fixture(scope="session")
def app(sample_settings):
    from search_service.web import close_app, create_app

    app = create_app(sample_settings)
    app.config["TESTING"] = True
    yield app
    close_app(app)


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def live_server(app) -> Iterator[LiveServer]:
    """The sample app under a real waitress server on a free loopback port."""
    with LiveServer(app) as server:
        yield server


# --------------------------------------------------------------------------- the browser


@pytest.fixture(scope="session")
def browser(pytestconfig):
    """One Debian Chromium for the whole run, driven by Playwright (never a downloaded browser).

    Missing, it skips the browser tests (said loudly at the end of the run), or fails them under
    ``--require-browser`` (``make test``) and ``CI``: a broken set-up, not a reason to pass without them.
    """
    chromium = Path(pytestconfig.getoption("chromium"))
    required = pytestconfig.getoption("require_browser") or bool(os.environ.get("CI"))
    if not chromium.exists():
        message = (f"{chromium} is not installed: sudo apt-get install -y {BROWSER_PACKAGES} "
                   "(make test installs them when run as root)")
        if required:
            pytest.fail(message)
        pytest.skip(message)
    try:
        from playwright import sync_api
    except ImportError:
        message = "Playwright is not installed: make install (or pip install -e '.[test]')"
        if required:
            pytest.fail(message)
        pytest.skip(message)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture()
def tab_options() -> dict:
    """Browser context options of the ``tab`` fixture; a module overrides this to change them."""
    return {}


@pytest.fixture()
def tab(browser, tab_options) -> Iterator[Tab]:
    """A tab in its own browser context (no cookies or cache from other tests), closed afterwards."""
    context, tab = open_tab(browser, **tab_options)
    try:
        yield tab
    finally:
        context.close()


@dataclass
class WidgetSite:
    host_url: str     # the institute's demo page, on its own origin
    search_url: str   # the search service, which allows that origin for CORS


@pytest.fixture(scope="session")
def widget_site(sample_settings) -> Iterator[WidgetSite]:
    """The widget on a host page of ANOTHER loopback origin, so suggestions go through CORS."""
    from search_service.web import close_app, create_app

    host_port = free_port()
    app = create_app(sample_settings.replace(cors_origins=(f"http://127.0.0.1:{host_port}",)))
    try:
        with LiveServer(app) as search, host_page(host_port, search.url) as host_url:
            yield WidgetSite(host_url, search.url)
    finally:
        close_app(app)
