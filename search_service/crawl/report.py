"""What one crawl did, as the operator reads it: problems by URL, notes, one summary line, progress."""

from __future__ import annotations

import dataclasses
import sys
import time

__all__ = ["CrawlProblem", "CrawlReport", "Progress"]


@dataclasses.dataclass(frozen=True, slots=True)
class CrawlProblem:
    """A page that could not be used, by URL, with the reason."""

    url: str
    reason: str

    def __str__(self) -> str:
        return f"{self.url}: {self.reason}"


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


@dataclasses.dataclass
class CrawlReport:
    """What one crawl did. ``problems`` make the run fail; ``broken_links`` and ``notes`` do not.

    ``aborted`` says why the crawl stopped before its end (nothing more is
    written then); ``notes`` say what the crawl did not do as the site asked (a
    Crawl-delay capped, a robots.txt read in part, sitemap URLs skipped); the
    counts of what was skipped name the bound that skipped it.
    """

    pages_fetched: int = 0
    not_modified: int = 0
    other_pages: int = 0
    disallowed: int = 0
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    dropped: int = 0  # --rebuild --drop-missing: live articles the crawl did not find gone, dropped all the same
    kept: int = 0
    requests: int = 0
    seconds: float = 0.0
    truncated: bool = False
    not_visited: int = 0  # URLs still queued when the page limit stopped the crawl
    links_skipped: int = 0  # links beyond crawl_max_links_per_page on a page
    sitemap_urls_skipped: int = 0  # URLs beyond crawl_max_sitemap_urls in a sitemap file
    sitemaps_skipped: int = 0  # sitemap files beyond the most read per crawl
    aborted: str | None = None
    generation: str | None = None
    problems: list[CrawlProblem] = dataclasses.field(default_factory=list)
    broken_links: list[CrawlProblem] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.aborted is None

    def summary(self) -> str:
        text = (
            f"{self.pages_fetched} pages fetched ({self.not_modified} not modified, {self.other_pages} not articles, "
            f"{self.disallowed} disallowed by robots.txt); articles: {self.added} added, {self.changed} changed, "
            f"{self.unchanged} unchanged, {self.removed} removed"
        )
        if self.dropped:
            text += f", {self.dropped} dropped (--drop-missing)"
        if self.kept:
            text += f", {self.kept} kept after failures"
        text += f"; {len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}"
        if self.broken_links:
            text += f", {len(self.broken_links)} broken link{'s' if len(self.broken_links) != 1 else ''}"
        skipped = []
        if self.links_skipped:
            skipped.append(f"{_plural(self.links_skipped, 'link')} (setting crawl_max_links_per_page)")
        if self.sitemap_urls_skipped:
            skipped.append(f"{_plural(self.sitemap_urls_skipped, 'sitemap URL')} (setting crawl_max_sitemap_urls)")
        if self.sitemaps_skipped:
            skipped.append(f"{_plural(self.sitemaps_skipped, 'sitemap')} beyond the 50 read per crawl")
        if skipped:
            text += "; skipped " + ", ".join(skipped)
        if self.truncated:
            text += "; stopped at the page limit (--max-pages / setting crawl_max_pages)"
            if self.not_visited:
                text += f" with {_plural(self.not_visited, 'URL')} not visited"
        if self.generation:
            text += f"; generation {self.generation}"
        return text + f"; {self.seconds:.1f} s"


class Progress:
    """Pages fetched and articles found: a tqdm bar on a terminal, a log line every 10 s otherwise."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self._bar = None
        self._last = time.monotonic()
        if getattr(self.stream, "isatty", lambda: False)():
            from tqdm import tqdm

            self._bar = tqdm(total=0, unit="page", file=self.stream, desc="crawling", dynamic_ncols=True)

    def update(self, report: CrawlReport, queued: int) -> None:
        if self._bar is not None:
            self._bar.total = report.pages_fetched + queued
            self._bar.update(report.pages_fetched - self._bar.n)
            self._bar.set_postfix(new=report.added, changed=report.changed, problems=len(report.problems),
                                  refresh=False)
            return
        now = time.monotonic()
        if now - self._last >= 10:
            self._last = now
            print(f"crawling: {report.pages_fetched} pages fetched, {queued} queued, {report.added} added, "
                  f"{report.changed} changed, {len(report.problems)} problems", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
