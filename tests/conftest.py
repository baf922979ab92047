"""Shared fixtures: the jieba cache, an index of the bundled samples, the app, a live waitress server,
engines over small indexes, one Chromium with a tab per test, and the widget on another origin.

Plain helpers (settings, index builds, servers, CLI runs) are in ``helpers.py``; browser tabs in
``browser_tabs.py``.
"""

from __future__ import annotations

import os
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
def browser():
    """One Debian Chromium for the whole run, driven by Playwright (never a downloaded browser)."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            # In CI a missing browser is a broken set-up, not a reason to skip every page test.
            pytest.fail(message)
        pytest.skip(message)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
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
