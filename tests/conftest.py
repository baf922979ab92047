"""Shared fixtures: a real index built from the bundled samples, the app, and a live waitress server."""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from search_service import analysis, indexer
from search_service.config import Settings, default_settings
from search_service.ingest import Ingest
from search_service.store import IndexStore

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
# As the machine's probe starts it: no sandbox as root, and no background connections
# (the network is closed; Chromium would keep retrying).
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--no-first-run", "--disable-sync"]
SAMPLES = REPO / "samples"
SHARED = Path(os.environ.get("BENCH_SHARED_DIR") or REPO.parent / "shared")  # BENCH_SHARED_DIR: from a git worktree


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


def make_settings(index_dir: Path, cache_dir: Path, **changes) -> Settings:
    """Default settings pointed at a test index (no config file, no environment).

    No rate limit unless a test passes ``rate_limit``: the suite sends far more requests
    from one address than any visitor would.
    """
    changes.setdefault("rate_limit", "")
    return default_settings(cwd=REPO).replace(index_dir=str(index_dir), cache_dir=str(cache_dir),
                                              reload_interval=0.0, **changes)


def build_index(index_dir: Path, paths: list[Path], **ingest_options) -> indexer.BuildResult:
    """Rebuild ``index_dir`` from files, failing the test on any ingest problem."""
    ingest = Ingest(**ingest_options)
    result = indexer.rebuild(IndexStore(index_dir), ingest.read(paths), procs=1)
    assert ingest.report.ok, [str(p) for p in ingest.report.problems]
    return result


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


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """waitress serving an app on a free loopback port, in a background thread."""

    def __init__(self, app) -> None:
        from waitress.server import create_server

        self.port = free_port()
        self.server = create_server(app, host="127.0.0.1", port=self.port, threads=8)
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1).read()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        self.server.close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="session")
def live_server(app) -> Iterator[LiveServer]:
    """The sample app under a real waitress server on a free loopback port."""
    with LiveServer(app) as server:
        yield server


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
