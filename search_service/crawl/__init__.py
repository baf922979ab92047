"""``search-service crawl URL``: index the website itself, and keep the index in step with it.

Modules: :mod:`.urls` (one spelling per page, canonical URLs, the site's hosts),
:mod:`.fetch` (polite HTTP) with :mod:`.deadline` (a whole answer's time limit),
:mod:`.robots` (robots.txt by Protego), :mod:`.sitemaps`, :mod:`.frontier` (the
URLs queued, on disk), :mod:`.state` (what earlier runs saw, in SQLite beside
the index), :mod:`.report` (problems, notes, summary) and :mod:`.crawler` (the
run). Article extraction is shared with file ingest (:mod:`search_service.ingest.extract`).
"""

from .crawler import (
    Crawler,
    CrawlOptions,
    CrawlProblem,
    CrawlReport,
    CrawlWriteError,
    default_user_agent,
    parse_category_map,
)

__all__ = ["CrawlOptions", "CrawlProblem", "CrawlReport", "CrawlWriteError", "Crawler", "default_user_agent",
           "parse_category_map"]
