"""The crawl itself: from a start URL to articles added, changed and removed in the index.

One thread, one site, one request at a time with a delay: the site is a small
institute's server and the index changes slowly, so politeness matters more
than speed (the benchmark shows where the time goes).

Order of work:

1. ``robots.txt`` of the start host (no rules on 4xx; nothing at all on 5xx, no
   answer or an unreadable one, and the crawl stops with an error);
2. the start URL (a redirect off the site, see :func:`~.urls.site_hosts`,
   stops the crawl), then the sitemaps robots.txt names, else ``/sitemap.xml``;
3. breadth-first over the links of every page, then the URLs of earlier runs
   (so that pages no longer linked are checked and removed when they answer
   404/410);
4. at the end, articles whose pages answered 404/410 or redirect to another
   article are deleted, unless another URL still gave them (a page that lost
   its article's shape is reported and kept: a site under maintenance answers
   200 with a notice everywhere).

Every page is fetched once per run in the spelling of
:func:`~search_service.crawl.urls.normalize_url`; an article is named by its
canonical URL. Articles go through :meth:`Ingest.validate_records`, the same
cleaning and validation as files and the write API.

Bounded whatever the site sends: the URLs queued live in a temporary SQLite
file (:mod:`.frontier`), as do the state rows waiting for a commit
(:class:`~.state.StagedRows`); a page's links and a sitemap's URLs are capped
(and what was skipped counted); an incremental crawl commits at least every
``crawl_commit_seconds``, so a crawl killed half-way keeps what it committed;
a write that fails (a full disk) stops the crawl with one message.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import itertools
import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

from .. import __version__
from ..article import Article
from ..config import SETTINGS_BY_NAME
from ..engine import indexer
from ..engine.store import IndexStore, JournalError, journal_since
from ..ingest import Ingest
from ..ingest.extract import DecodeProblem, PageFields, Selectors, UnparsableHTML, decode_html, extract_page
from .fetch import Fetcher, Response
from .frontier import Frontier
from .report import CrawlProblem, CrawlReport, Progress
from .robots import MAX_ROBOTS_BYTES, RobotsRules
from .sitemaps import MAX_SITEMAP_URLS, parse_sitemap
from .state import CrawlState, PageRecord, StagedRows, now_iso
from .urls import canonical_url, host_of, is_probably_html, join_link, normalize_url, site_hosts, www_twin

__all__ = ["CrawlOptions", "CrawlProblem", "CrawlReport", "CrawlWriteError", "Crawler", "default_user_agent"]

log = logging.getLogger(__name__)

_HTML_TYPES = ("text/html", "application/xhtml+xml", "")
_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_REDIRECT_HOPS = 5
_MAX_SITEMAPS = 50
_MAX_SITEMAP_BYTES = 50 * 1024 * 1024
# The longest delay between requests: the crawl_delay setting's own maximum (a robots.txt asking for
# more is capped to it, with a note).
_MAX_DELAY = float(SETTINGS_BY_NAME["crawl_delay"].max or 3600)
# A page whose body text is mostly link text is a list of articles, not one.
_LIST_LINK_SHARE = 0.5
_STATE_FILE = "crawl.sqlite3"
# URLs of earlier runs are queued this many at a time (there may be very many).
_QUEUE_BATCH = 10_000


def default_user_agent() -> str:
    """``search-service-crawler/<version> (+site search indexer; respects robots.txt)``."""
    return f"search-service-crawler/{__version__} (+site search indexer; respects robots.txt)"


@dataclasses.dataclass(frozen=True)
class CrawlOptions:
    """Everything a crawl needs besides the index (see the ``crawl_*`` settings)."""

    start_url: str
    delay: float = 1.0
    max_pages: int = 10_000
    rebuild: bool = False
    drop_missing: bool = False
    user_agent: str = dataclasses.field(default_factory=default_user_agent)
    timeout: float = 20.0
    max_page_bytes: int = 5_000_000
    retries: int = 2
    retry_backoff: float = 2.0
    category_map: tuple[tuple[str, str], ...] = ()
    selectors: Selectors = Selectors()
    default_category: str = ""
    allow_untitled: bool = False
    www_twin: bool = True
    allowed_hosts: tuple[str, ...] = ()
    max_links_per_page: int = 1000
    max_sitemap_urls: int = MAX_SITEMAP_URLS
    commit_seconds: float = 30.0
    batch_size: int = 500
    memory_mb: int = 256
    lock_timeout: float = 10.0
    keep_generations: int = 2
    state_path: str = ""

    @classmethod
    def from_settings(cls, settings, start_url: str, *, delay: float | None = None,
                      max_pages: int | None = None, rebuild: bool = False,
                      drop_missing: bool = False) -> CrawlOptions:
        return cls(
            start_url=start_url,
            delay=settings.crawl_delay if delay is None else delay,
            max_pages=settings.crawl_max_pages if max_pages is None else max_pages,
            rebuild=rebuild,
            drop_missing=drop_missing,
            user_agent=settings.crawl_user_agent or default_user_agent(),
            timeout=settings.crawl_timeout,
            max_page_bytes=settings.crawl_max_page_bytes,
            retries=settings.crawl_retries,
            retry_backoff=settings.crawl_retry_backoff,
            category_map=parse_category_map(settings.crawl_category_map),
            selectors=Selectors(
                title=settings.crawl_title_selector, body=settings.crawl_body_selector,
                date=settings.crawl_date_selector, category=settings.crawl_category_selector,
                remove=settings.crawl_remove_selector,
            ),
            default_category=settings.default_category,
            allow_untitled=settings.allow_untitled,
            www_twin=settings.crawl_www_twin,
            allowed_hosts=tuple(settings.crawl_allowed_hosts),
            max_links_per_page=settings.crawl_max_links_per_page,
            max_sitemap_urls=settings.crawl_max_sitemap_urls,
            commit_seconds=settings.crawl_commit_seconds,
            memory_mb=settings.index_memory_mb,
            lock_timeout=settings.lock_timeout,
            keep_generations=settings.keep_generations,
            state_path=settings.crawl_state_db or str(Path(settings.index_dir) / _STATE_FILE),
        )


def parse_category_map(entries) -> tuple[tuple[str, str], ...]:
    """``["/news/gxq/=高新区新闻", …]`` → ``(("/news/gxq/", "高新区新闻"), …)``, longest prefix first.

    Raises ``ValueError`` naming the entry that has no ``=`` or an empty side.
    """
    pairs = []
    for entry in entries:
        prefix, sep, category = str(entry).partition("=")
        if not sep or not prefix.strip() or not category.strip():
            raise ValueError(
                f"setting crawl_category_map: entry {entry!r} must look like \"/news/gxq/=高新区新闻\" "
                "(a URL path prefix, '=', a category)"
            )
        pairs.append((prefix.strip(), category.strip()))
    return tuple(sorted(pairs, key=lambda pair: -len(pair[0])))


class CrawlWriteError(Exception):
    """Writing the index, the crawl state or the crawl's temporary files failed (a full disk, say).

    The crawl stops there and writes nothing more: what was committed before
    stays, and the state never claims more than the index holds.
    """

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"could not write {what}: {reason}")
        self.what = what
        self.reason = reason

    def message(self, rebuild: bool) -> str:
        """One line for the operator: what failed, what it means, what to do."""
        if rebuild:
            kept = "nothing was published and the live index is unchanged"
        else:
            kept = ("the articles committed before are kept, and the next run picks up from them "
                    "(re-fetching the pages whose articles were not committed)")
        return (f"could not write {self.what} ({self.reason}); the crawl stopped and nothing more was written: "
                f"{kept}. Free disk space (or raise the file size limit) and run the crawl again.")


@contextlib.contextmanager
def _writing(what: str) -> Iterator[None]:
    """Turn the failure of a write into :class:`CrawlWriteError` naming ``what`` was being written."""
    try:
        yield
    except JournalError as exc:
        raise CrawlWriteError(what, exc.strerror) from exc
    except OSError as exc:
        raise CrawlWriteError(what, exc.strerror or str(exc)) from exc
    except sqlite3.Error as exc:
        raise CrawlWriteError(what, str(exc)) from exc


def _batches(items: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


class Crawler:
    """One crawl of one site into one index store. Use :meth:`run` once.

    Raises ``ValueError`` for a start URL or setting that cannot be used and
    :class:`CrawlWriteError` when the crawl state cannot be opened.
    """

    def __init__(self, store: IndexStore, options: CrawlOptions, *, progress_stream=None,
                 show_progress: bool = True) -> None:
        start = normalize_url(options.start_url)
        if start is None:
            raise ValueError(f"not an http(s) URL: {options.start_url!r}; give the site's address, "
                             "e.g. http://www.achie.org/")
        self.store = store
        self.options = options
        self.start = start
        self.hosts = site_hosts(start, include_www_twin=options.www_twin, allowed=options.allowed_hosts)
        self.report = CrawlReport()
        self.ingest = Ingest(options.default_category, allow_untitled=options.allow_untitled, log_problems=False)
        with _writing("the crawl state"):
            self.state = CrawlState(options.state_path or Path(store.root) / _STATE_FILE)
        try:
            with _writing("the crawl's temporary files"):
                self._frontier = Frontier()
                self._staged = StagedRows()  # rows to write once the index committed what they describe
                self._deferred = StagedRows()  # rows of removed articles: written after the delete
        except CrawlWriteError:
            self.state.close()
            raise
        self.fetcher = Fetcher(options.user_agent, delay=options.delay, timeout=options.timeout,
                               max_bytes=options.max_page_bytes, retries=options.retries,
                               backoff=options.retry_backoff)
        self._robots: dict[str, RobotsRules] = {}
        self._homes = [start]  # the start URL, and where it redirects on another of the site's hosts
        self._alive: set[str] = set()  # article ids a page gave (or kept) this run
        self._maybe_gone: set[str] = set()  # article ids whose page said they are gone
        self._pending: list[Article] = []
        self._pending_added = 0  # of the pending articles, those new to the index
        self._last_commit = time.monotonic()
        self._carried: list[str] = []  # rebuild: ids of articles kept from the live generation
        self._rebuild_ids: set[str] = set()
        self._index_ids: set[str] | None = None  # ids in the live generation, read once, kept up to date
        self._progress = Progress(progress_stream) if show_progress else None

    # -- the run ---------------------------------------------------------------

    def run(self) -> CrawlReport:
        started = time.monotonic()
        try:
            try:
                if self.options.rebuild:
                    self._run_rebuild()
                else:
                    self._run_incremental()
            except CrawlWriteError as exc:
                self.report.aborted = exc.message(self.options.rebuild)
        finally:
            self.report.requests = self.fetcher.requests
            self.report.seconds = time.monotonic() - started
            if self._progress is not None:
                self._progress.close()
            self.fetcher.close()
            self._frontier.close()
            self._staged.close()
            self._deferred.close()
            self.state.close()
        return self.report

    def _run_incremental(self) -> None:
        for article in self._crawl():
            self._pending.append(article)
            if len(self._pending) >= self.options.batch_size:
                self._commit()
        self._commit()
        if self.report.aborted is None:
            self._remove_gone()
        with _writing("the crawl state"):
            self._deferred.move_to(self.state)

    def _run_rebuild(self) -> None:
        def articles() -> Iterator[Article]:
            for article in self._crawl():
                self._rebuild_ids.add(article.id)
                yield article
            for article_id in self._carried:
                if article_id not in self._rebuild_ids:
                    kept = self._stored(article_id)
                    if kept is not None:
                        self._rebuild_ids.add(article_id)
                        yield kept

        self._ids()  # the live ids, read before the crawl
        started = time.time()
        with _writing("the new generation of the index"):
            result = indexer.rebuild(
                self.store, articles(), procs=1, memory_mb=self.options.memory_mb,
                keep=self.options.keep_generations,
                # Never publish an empty or aborted crawl over a good index, nor drop articles the
                # crawl did not find gone without --drop-missing (_may_publish decides: the indexer
                # would count the articles found gone as missing too).
                should_commit=lambda: self._may_publish(started),
                drop_missing=True,
            )
        if not result.committed:
            if self.report.aborted is None:
                self.report.aborted = "no article found; nothing was published (the live index is unchanged)"
            return
        self.report.generation = result.generation
        with _writing("the crawl state"):
            self._staged.move_to(self.state)
            self._deferred.move_to(self.state)

    def _may_publish(self, started: float) -> bool:
        """Whether the rebuilt generation may replace the live one; sets ``removed``/``dropped`` or ``aborted``.

        Live articles absent from the crawl go with it only when the crawl found
        their pages gone (404/410, redirected away) or with ``--drop-missing``:
        the others were written through the API or ``index``, or are pages this
        crawl did not reach. Articles written while the crawl ran are carried
        into the new generation by the indexer, so they are not missing.
        """
        if self.report.aborted is not None or not self._rebuild_ids:
            return False
        absent = self._live_ids_now() - self._rebuild_ids - set(journal_since(self.store, started))
        gone = absent & (self._maybe_gone - self._alive)
        missing = sorted(absent - gone)
        if missing and not self.options.drop_missing:
            shown = ", ".join(missing[:5]) + (", …" if len(missing) > 5 else "")
            self.report.aborted = (
                f"--rebuild would drop {len(missing)} live article(s) that this crawl did not find gone ({shown}): "
                "written through the write API or `index`, or pages this crawl did not reach (linked from "
                "nowhere it went, or beyond --max-pages). Nothing was published; the live index is unchanged. "
                "To drop them, run again with --drop-missing; to keep them, crawl without --rebuild (it adds, "
                "replaces and removes the site's articles in the live generation)."
            )
            return False
        self.report.removed, self.report.dropped = len(gone), len(missing)
        return True

    # -- index and state writes -------------------------------------------------

    def _commit(self) -> None:
        """Commit the pending articles, then write the state rows that describe them."""
        if self._pending:
            try:
                with _writing("the index"):
                    indexer.update(self.store, self._pending, memory_mb=self.options.memory_mb,
                                   lock_timeout=self.options.lock_timeout)
            except CrawlWriteError:
                # The summary counts what the index holds: these were not written.
                self.report.added -= self._pending_added
                self.report.changed -= len(self._pending) - self._pending_added
                raise
            self._ids().update(article.id for article in self._pending)
            self._pending = []
            self._pending_added = 0
        with _writing("the crawl state"):
            self._staged.move_to(self.state)
        self._last_commit = time.monotonic()

    def _after_page(self) -> None:
        # A crawl of a slow site may take hours to fetch a batch: commit by time too, so that a crawl
        # killed half-way keeps what it fetched up to its last commit. A rebuild publishes at its end.
        if not self.options.rebuild and time.monotonic() - self._last_commit >= self.options.commit_seconds:
            self._commit()

    def _stage(self, row: PageRecord) -> None:
        with _writing("the crawl's temporary files"):
            self._staged.add(row)

    def _defer(self, row: PageRecord) -> None:
        with _writing("the crawl's temporary files"):
            self._deferred.add(row)

    def _remove_gone(self) -> None:
        gone = sorted(i for i in self._maybe_gone - self._alive if self._in_index(i))
        if gone:
            with _writing("the index"):
                self.report.removed = len(indexer.delete(self.store, gone, lock_timeout=self.options.lock_timeout))

    def _ids(self) -> set[str]:
        if self._index_ids is None:
            self._index_ids = self.store.live_ids()
        return self._index_ids

    def _live_ids_now(self) -> set[str]:
        """The ids of the live generation now (another process may have written since the crawl began)."""
        return self.store.live_ids()

    def _in_index(self, article_id: str) -> bool:
        return article_id in self._ids()

    def _stored(self, article_id: str) -> Article | None:
        return self.store.stored_article(article_id)

    # -- crawling ---------------------------------------------------------------

    def _crawl(self) -> Iterator[Article]:
        rules = self._robots_for(self.start)
        if rules.problem:
            self.report.aborted = rules.problem
            return
        self._enqueue([self.start], None)
        first = True
        while len(self._frontier):
            if self.report.pages_fetched >= self.options.max_pages:
                self.report.truncated = True
                self.report.not_visited = len(self._frontier)
                break
            url = self._frontier.pop()
            if url is None:
                break
            yield from self._visit(url)
            if first:
                first = False
                if self.report.aborted is not None:
                    return
                self._read_sitemaps()
                known = self.state.known_urls(("article", "page", "bad", "failed", "redirect"))
                for batch in _batches(known, _QUEUE_BATCH):
                    self._enqueue(batch, None)
            self._after_page()
            if self._progress is not None:
                self._progress.update(self.report, len(self._frontier))

    def _enqueue(self, urls: Iterable[str], referrer: str | None) -> None:
        """Queue the URLs that are the site's and may be pages; each is queued once per run."""
        wanted = [url for url in urls if host_of(url) in self.hosts and is_probably_html(url)]
        if wanted:
            with _writing("the crawl's temporary files"):
                self._frontier.add(wanted, referrer)

    def _robots_url(self, url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}/robots.txt"

    def _robots_for(self, url: str) -> RobotsRules:
        host = host_of(url)
        rules = self._robots.get(host)
        if rules is not None:
            return rules
        agent = self.options.user_agent
        robots_url = self._robots_url(url)
        # Past 500 KiB the file is cut, not refused: refusing it would allow all it disallows.
        response = self._follow(robots_url, max_bytes=MAX_ROBOTS_BYTES, truncate=True, check_robots=False)
        if response.status == 200 and not response.problem:
            rules = RobotsRules.parse(response.body, agent)
            if response.truncated:
                self.report.notes.append(
                    f"{robots_url} is larger than {MAX_ROBOTS_BYTES // 1024} KiB: only its first "
                    f"{MAX_ROBOTS_BYTES // 1024} KiB were read (RFC 9309 allows it; Google does the same)")
        elif 400 <= response.status < 500 and response.status != 429 and not response.problem:
            rules = RobotsRules.allow_everything(agent)
        else:
            # No answer, 5xx, or an answer that cannot be read (cut short, undecodable, too slow):
            # the site may be down, and a crawler must then fetch nothing (RFC 9309 §2.3.1.4).
            reason = response.problem or f"HTTP {response.status}"
            nothing = "nothing was crawled" if host == host_of(self.start) else f"nothing on {host} was fetched"
            problem = (f"robots.txt could not be read ({reason}); {nothing}, as RFC 9309 asks. "
                       "Try again when the site answers.")
            rules = RobotsRules.unreachable(agent, problem)
            self.report.problems.append(CrawlProblem(robots_url, problem))
        self._apply_crawl_delay(host, rules)
        self._robots[host] = rules
        return rules

    def _apply_crawl_delay(self, host: str, rules: RobotsRules) -> None:
        delay, note = rules.bounded_crawl_delay(_MAX_DELAY)
        if note:
            self.report.notes.append(f"robots.txt of {host}: {note}")
            log.warning("robots.txt of %s: %s", host, note)
        if delay is not None and delay > self.fetcher.delay:
            log.info("robots.txt of %s asks for Crawl-delay %g s", host, delay)
            self.fetcher.delay = delay

    def _follow(self, url: str, *, max_bytes: int, truncate: bool = False, too_big: str | None = None,
                check_robots: bool = True) -> Response:
        """GET with redirects followed on the site's hosts (robots.txt, sitemaps)."""
        for _ in range(_MAX_REDIRECT_HOPS + 1):
            response = self.fetcher.get(url, max_bytes=max_bytes, truncate=truncate, too_big=too_big)
            if response.status not in _REDIRECTS:
                return response
            target = join_link(url, response.headers.get("location", ""))
            if target is None or host_of(target) not in self.hosts:
                return Response(url, response.status, problem="redirected off the site")
            if check_robots and not self._robots_for(target).allowed(target):
                return Response(url, response.status, problem="redirected to a URL robots.txt disallows")
            url = target
        return Response(url, 0, problem=f"more than {_MAX_REDIRECT_HOPS} redirects")

    def _read_sitemaps(self) -> None:
        """The sitemaps robots.txt names (else ``/sitemap.xml``), of the start host and where the start URL led."""
        first: dict[str, bool] = {}  # sitemap URL -> named by robots.txt (else only a guess)
        for home in self._homes:
            rules = self._robots_for(home)
            listed = [u for u in (normalize_url(s) for s in rules.sitemaps) if u and host_of(u) in self.hosts]
            parts = urlsplit(home)
            for url in listed or [f"{parts.scheme}://{parts.netloc}/sitemap.xml"]:
                first.setdefault(url, bool(listed))
        todo = collections.deque(list(first)[:_MAX_SITEMAPS])
        self.report.sitemaps_skipped += max(0, len(first) - _MAX_SITEMAPS)
        queued = set(todo)  # read or to be read: at most _MAX_SITEMAPS of them
        while todo:
            url = todo.popleft()
            named = first.get(url, True)  # a child of a sitemap index is named too
            if not self._robots_for(url).allowed(url):
                continue
            response = self._follow(url, max_bytes=_MAX_SITEMAP_BYTES,
                                     too_big="sitemap larger than 50 MB (the sitemaps.org limit); not read")
            if response.status != 200 or response.problem:
                if named:  # a sitemap robots.txt names must be there; /sitemap.xml is only a guess
                    reason = response.problem or f"HTTP {response.status}"
                    self.report.problems.append(CrawlProblem(url, f"sitemap not read ({reason})"))
                continue
            try:
                sitemap = parse_sitemap(response.body, self.options.max_sitemap_urls)
            except ValueError as exc:
                self.report.problems.append(CrawlProblem(url, str(exc)))
                continue
            if sitemap.problem:
                self.report.problems.append(CrawlProblem(url, sitemap.problem))
            if sitemap.skipped:
                self.report.sitemap_urls_skipped += sitemap.skipped
                self.report.notes.append(
                    f"{url}: {sitemap.skipped:,} URLs after its first {self.options.max_sitemap_urls:,} were "
                    "skipped (setting crawl_max_sitemap_urls)")
            for child in sitemap.sitemaps:
                child_url = normalize_url(child)
                if child_url is None or host_of(child_url) not in self.hosts or child_url in queued:
                    continue
                if len(queued) >= _MAX_SITEMAPS:
                    self.report.sitemaps_skipped += 1
                    continue
                queued.add(child_url)
                todo.append(child_url)
            for batch in _batches((u for u in map(normalize_url, sitemap.pages) if u), _QUEUE_BATCH):
                self._enqueue(batch, url)

    # -- one page -----------------------------------------------------------------

    def _visit(self, url: str) -> Iterator[Article]:
        if not self._robots_for(url).allowed(url):
            self.report.disallowed += 1
            return
        prev = self.state.get(url)
        headers = self._conditional_headers(prev)
        response = self.fetcher.get(url, headers)
        self.report.pages_fetched += 1
        now = now_iso()

        if response.problem or response.transient:
            reason = response.problem or f"HTTP {response.status}"
            if response.attempts > 1:
                reason += f" (after {response.attempts} attempts)"
            self._failed(url, prev, reason)
            return
        if response.status == 304 and prev is not None:
            self.report.not_modified += 1
            if prev.kind == "article" and prev.article_id and prev.article_id not in self._alive:
                self.report.unchanged += 1
                self._alive.add(prev.article_id)
            else:
                self.report.other_pages += 1
            self._enqueue(prev.links, url)
            prev.last_seen = prev.last_fetched = now
            prev.status = 200
            self._stage(prev)
            return
        if response.status in _REDIRECTS:
            location = response.headers.get("location", "")
            target = join_link(url, location)
            if url == self.start and (target is None or host_of(target) not in self.hosts):
                self._left_site(target or location)
                return
            if target is not None:
                if url == self.start and host_of(target) != host_of(url):
                    self._homes.append(target)  # the site's own address (achie.org -> www.achie.org): its sitemaps
                self._enqueue([target], url)
            self.report.other_pages += 1
            self._gone(prev, PageRecord(url, "redirect", response.status, redirect_to=target, last_seen=now,
                                        last_fetched=now))
            return
        if response.status in (404, 410):
            self.report.other_pages += 1
            if prev is None or prev.kind == "gone":
                referrer = self._frontier.referrer(url)
                if referrer:
                    self.report.broken_links.append(
                        CrawlProblem(url, f"HTTP {response.status}, linked from {referrer}"))
            self._gone(prev, PageRecord(url, "gone", response.status, last_fetched=now))
            return
        if response.status != 200:
            self._failed(url, prev, f"HTTP {response.status}")
            return
        if response.media_type not in _HTML_TYPES:
            self.report.other_pages += 1
            self._stage(PageRecord(url, "page", 200, last_seen=now, last_fetched=now))
            return
        yield from self._page(url, prev, response, now)

    def _left_site(self, target: str) -> None:
        """The start URL redirects off the site: stop, and say how to crawl the target if it is the site."""
        site = ", ".join(sorted(self.hosts))
        if normalize_url(target) is None:
            self.report.aborted = (f"the start URL {self.start} redirects to {target or '(no Location)'}, which is "
                                   f"no http(s) URL of the site ({site}); nothing was crawled.")
            return
        host = host_of(normalize_url(target) or target)
        how = f'add "{host}" to the setting crawl_allowed_hosts'
        if not self.options.www_twin and www_twin(host_of(self.start)) == host:
            how = f"set crawl_www_twin = true (or {how})"
        self.report.aborted = (
            f"the start URL {self.start} redirects to {target}, off the site ({site}); nothing was crawled. "
            f"If that is the site's own address, start from it or {how}.")

    def _conditional_headers(self, prev: PageRecord | None) -> dict[str, str]:
        if self.options.rebuild or prev is None or prev.kind not in ("article", "page"):
            return {}
        if prev.kind == "article" and not (prev.article_id and self._in_index(prev.article_id)):
            return {}  # the index lost it (a rebuild from files?): fetch it whole
        headers = {}
        if prev.etag:
            headers["If-None-Match"] = prev.etag
        if prev.last_modified:
            headers["If-Modified-Since"] = prev.last_modified
        return headers

    def _failed(self, url: str, prev: PageRecord | None, reason: str) -> None:
        """A page that did not answer usefully: report it, keep what the index has."""
        self.report.problems.append(CrawlProblem(url, reason))
        self._keep(prev)
        if prev is None:
            self._stage(PageRecord(url, "failed", 0, problem=reason, last_fetched=now_iso()))

    def _keep(self, prev: PageRecord | None) -> None:
        """The article the page gave last time stays (carried into a rebuild)."""
        if prev is not None and prev.article_id:
            self._alive.add(prev.article_id)
            self.report.kept += 1
            if self.options.rebuild:
                self._carried.append(prev.article_id)

    def _gone(self, prev: PageRecord | None, row: PageRecord) -> None:
        """The page no longer gives the article it gave; the article goes unless another URL gives it."""
        if prev is not None and prev.article_id:
            self._maybe_gone.add(prev.article_id)
            self._defer(row)
        else:
            self._stage(row)

    def _page_links(self, url: str, hrefs: list[str]) -> list[str]:
        """The site's page links among ``hrefs``, each once, at most ``max_links_per_page`` (the rest counted)."""
        kept: dict[str, None] = {}
        beyond: set[str] = set()
        for href in hrefs:
            link = join_link(url, href)
            if link is None or link in kept or host_of(link) not in self.hosts or not is_probably_html(link):
                continue
            if len(kept) < self.options.max_links_per_page:
                kept[link] = None
            else:
                beyond.add(link)
        self.report.links_skipped += len(beyond)
        return list(kept)

    def _page(self, url: str, prev: PageRecord | None, response: Response, now: str) -> Iterator[Article]:
        try:
            text = decode_html(response.body, http_charset=response.charset, detect=True,
                               fix_hint="the page's charset (HTTP header or <meta>) does not match its bytes")
            fields = extract_page(text, self.options.selectors, collect_links=True)
        except DecodeProblem as problem:
            self._failed(url, prev, f"undecodable: line {problem.line}: {problem.reason}")
            return
        except UnparsableHTML as exc:
            self._failed(url, prev, str(exc))
            return
        links = self._page_links(url, fields.links)
        self._enqueue(links, url)
        row = PageRecord(url, "page", 200, etag=response.headers.get("etag"),
                         last_modified=response.headers.get("last-modified"), links=links, last_seen=now,
                         last_fetched=now)

        if not fields.article_signs or fields.link_share >= _LIST_LINK_SHARE:
            # Home, list and pagination pages, or anything else without an article's shape.
            self.report.other_pages += 1
            if prev is not None and prev.kind == "article" and prev.article_id:
                # Not a reason to delete: a site under maintenance answers 200 with a notice for every
                # page. Only 404/410 and redirects take an article away.
                self._failed(url, prev, "was an article, now has no article's shape (no 来源/日期 line, "
                             "publication date or <article>); the indexed article is kept")
                return
            row.content_hash = hashlib.sha256(response.body).hexdigest()
            self._gone(prev, row)
            return

        article_id = canonical_url(url, fields.url, self.hosts)
        article = self._article(url, article_id, fields)
        if article is None:  # reported as a problem
            self._keep(prev)
            row.kind, row.problem, row.etag, row.last_modified = "bad", self.report.problems[-1].reason, None, None
            row.article_id = prev.article_id if prev is not None else None
            self._stage(row)
            return
        row.kind, row.article_id = "article", article.id
        row.content_hash = _article_hash(article)
        if article.id in self._alive:  # the same article under another URL, already done this run
            self.report.other_pages += 1
            self._stage(row)
            return
        self._alive.add(article.id)
        old_hash = self._old_hash(prev, article.id)
        if self.options.rebuild:
            if old_hash is None and not self._in_index(article.id):
                self.report.added += 1
            elif old_hash == row.content_hash:
                self.report.unchanged += 1
            else:
                self.report.changed += 1
            self._stage(row)
            yield article
            return
        in_index = self._in_index(article.id)
        if in_index and old_hash == row.content_hash:
            self.report.unchanged += 1
            self._stage(row)
            return
        if in_index:
            self.report.changed += 1
        else:
            self.report.added += 1
            self._pending_added += 1
        self._stage(row)
        yield article

    def _old_hash(self, prev: PageRecord | None, article_id: str) -> str | None:
        if prev is not None and prev.article_id == article_id and prev.kind == "article":
            return prev.content_hash
        for other in self.state.urls_of_article(article_id):
            record = self.state.get(other)
            if record is not None and record.kind == "article":
                return record.content_hash
        return None

    def _article(self, url: str, article_id: str, fields: PageFields) -> Article | None:
        """Validate the page's fields as ingest does; None (and a problem) when it is not usable."""
        missing = []
        if not fields.title and not self.options.allow_untitled:
            missing.append("no title (no <h1>, \".title\", og:title or <title>; or set crawl_title_selector)")
        if not fields.body:
            missing.append("no body (no text in \".content\", <article>, <main> or <body>; "
                           "or set crawl_body_selector)")
        if missing:
            self.report.problems.append(CrawlProblem(url, "; ".join(missing)))
            return None
        category = _mapped_category(article_id, self.options.category_map) or fields.category
        record = {"id": article_id, "title": fields.title or "", "body": fields.body, "category": category,
                  "date": fields.date, "url": article_id, "source": fields.source}
        articles = self.ingest.validate_records([record], label=url)
        if not articles:
            reasons = "; ".join(p.reason for p in self.ingest.report.problems) or "rejected"
            self.report.problems.append(CrawlProblem(url, reasons))
            return None
        return articles[0]


def _mapped_category(url: str, mapping: tuple[tuple[str, str], ...]) -> str:
    """The category of the longest ``crawl_category_map`` prefix that ``url`` (or its path) starts with."""
    path = urlsplit(url).path
    for prefix, category in mapping:
        if url.startswith(prefix) if prefix.startswith(("http://", "https://")) else path.startswith(prefix):
            return category
    return ""


def _article_hash(article: Article) -> str:
    """sha256 of what is indexed: a page whose markup changed but whose article did not is unchanged."""
    data = json.dumps(article.to_json(), ensure_ascii=False, sort_keys=True).encode("utf-8")
    return hashlib.sha256(data).hexdigest()
