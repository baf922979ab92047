"""Crawls that die (issue 23): `search-service crawl` in a subprocess, killed with SIGKILL or onto a full disk.

Nothing acknowledged may be lost and the next run must pick up consistently: the index keeps what
the killed crawl committed, and the crawl state never claims more than the index holds.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from search_service.engine.store import IndexStore

from ..helpers import cli_env, write_corpus
from .crawl_site import Site, article_page, build_site, crawl, expected_articles, list_page

pytestmark = pytest.mark.processes  # servers, CLI runs or merge processes

EXTRA = 30  # articles added to the site, so that the crawl takes a while


@pytest.fixture()
def site():
    site = Site()
    build_site(site)
    items = []
    for i in range(EXTRA):
        path = f"/news/kjcx/2021{i:08d}.html"
        site.put(path, article_page(title=f"科技创新第{i}号", crumbs='<a href="/news/kjcx/">科技创新</a>',
                                    info=f"来源:高新院 日期:2021-01-{i % 28 + 1:02d} 点击:",
                                    paragraphs=[f"第{i}篇科技创新的正文，园区企业的研发投入。"]))
        items.append((path, f"科技创新第{i}号", "2021-01-01"))
    site.put("/news/kjcx/", list_page("kjcx", "科技创新", items, []))
    yield site
    site.close()


def article_urls(site: Site) -> set[str]:
    return {a.id for a in expected_articles(site.base)} | {
        f"{site.base}/news/kjcx/2021{i:08d}.html" for i in range(EXTRA)}


def indexed_ids(index_dir: Path) -> set[str]:
    """Ids in the live generation, read as another process writes it (none before its first commit)."""
    store = IndexStore(index_dir)
    if store.current_name() is None:
        return set()
    return {article.id for article in store.stored_articles()}


def cli_run(env: dict, cwd: Path, *args: str, preexec_fn=None) -> subprocess.CompletedProcess:
    # cwd: a folder without config.toml, so only env gives settings.
    return subprocess.run([sys.executable, "-m", "search_service.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300, preexec_fn=preexec_fn)


def file_size_limit(limit: int):
    """A preexec_fn: every file the process writes is cut at ``limit`` bytes, as on a full disk."""
    import resource

    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


# --------------------------------------------------------------------------- killed


def test_a_killed_crawl_keeps_what_it_committed_and_the_next_run_picks_up(site, tmp_path, jieba_cache):
    index_dir = tmp_path / "index"
    for path in list(site.pages):
        if path.endswith(".html") and "/list_" not in path:
            site.slow[path] = 0.25  # a slow site: a batch of 500 articles would take hours
    env = cli_env(index_dir, jieba_cache)
    env["SEARCH_SERVICE_CRAWL_COMMIT_SECONDS"] = "0.5"
    process = subprocess.Popen([sys.executable, "-m", "search_service.cli", "crawl", site.base + "/", "--delay", "0"],
                               env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        committed: set[str] = set()
        while time.monotonic() < deadline and process.poll() is None and len(committed) < 3:
            time.sleep(0.05)
            committed = indexed_ids(index_dir)
        fetched = {site.base + p for p in site.paths()} & article_urls(site)
        running = process.poll() is None
    finally:
        process.send_signal(signal.SIGKILL)
        stderr = process.communicate(timeout=30)[1].decode()
    assert running and len(committed) >= 3, f"no article committed while the crawl ran\n{stderr}"
    assert len(fetched) < len(article_urls(site)) - 10, "committed only when (nearly) all was fetched"

    kept = indexed_ids(index_dir)
    assert committed <= kept <= article_urls(site)
    with sqlite3.connect(index_dir / "crawl.sqlite3") as db:
        claimed = {row[0] for row in db.execute("SELECT article_id FROM pages WHERE kind = 'article'")}
    assert claimed <= kept, "the crawl state claims articles the index does not hold"

    site.slow.clear()
    report = crawl(site, tmp_path)
    assert indexed_ids(index_dir) == article_urls(site)
    assert report.added == len(article_urls(site)) - len(kept)
    assert report.changed + report.unchanged == len(kept)
    assert report.unchanged >= len(claimed)  # their state rows made conditional requests


# --------------------------------------------------------------------------- full disk


@pytest.mark.parametrize("full", ["journal", "segment", "state"])
def test_a_crawl_onto_a_full_disk_ends_with_one_message(site, tmp_path, jieba_cache, full):
    index_dir = tmp_path / "index"
    env = cli_env(index_dir, jieba_cache)
    assert cli_run(env, tmp_path, "index", "--rebuild", str(write_corpus(tmp_path / "a.jsonl", 20))).returncode == 0
    limit = 150_000
    if full == "journal":  # the journal is at the limit: the first commit cannot be journaled
        (index_dir / "journal.jsonl").write_bytes(b"\n" * limit)
    elif full == "segment":  # one article larger than the limit: its segment cannot be written
        site.put("/news/gxq/201909127966.html", article_page(
            title="很长的文章", crumbs='<a href="/news/gxq/">高新区新闻</a>', info="来源:高新院 日期:2020-01-01 点击:",
            paragraphs=[f"第{i}段：高新区的产业园区建设与智慧城市发展。" for i in range(8000)]))
    else:  # the crawl state's write-ahead log outgrows a smaller limit, long before any commit of the index
        limit = 20_000

    done = cli_run(env, tmp_path, "crawl", site.base + "/", "--delay", "0", preexec_fn=file_size_limit(limit))

    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    what = "the crawl state" if full == "state" else "the index"
    reason = "disk I/O error" if full == "state" else "File too large"
    assert last.startswith(f"search-service: error: could not write {what} ({reason}); the crawl stopped and "
                           "nothing more was written"), last
    assert last.endswith("Free disk space (or raise the file size limit) and run the crawl again."), last
    assert {f"doc{i}" for i in range(20)} <= indexed_ids(index_dir)  # nothing acknowledged was lost

    (index_dir / "journal.jsonl").unlink(missing_ok=True)  # space is back
    done = cli_run(env, tmp_path, "crawl", site.base + "/", "--delay", "0")
    assert done.returncode == 1, done.stderr  # the site's two bad pages, nothing else
    ids = indexed_ids(index_dir)
    assert article_urls(site) <= ids and {f"doc{i}" for i in range(20)} <= ids
