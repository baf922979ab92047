"""robots.txt as RFC 9309 says, parsed by Protego (Scrapy's parser).

Protego was chosen over ``urllib.robotparser`` because the standard library's
parser takes the first matching rule instead of the longest, knows no ``*``/``$``
wildcards and ignores ``Allow`` precedence, all of which real robots.txt files
use; Protego implements the RFC (longest match wins, Allow wins ties) and reads
``Crawl-delay`` and ``Sitemap`` lines too.

What a failed fetch means (RFC 9309 §2.3.1): a 4xx answer means there are no
rules (crawl everything); a 5xx answer or no answer means the site is
unreachable, and then nothing may be crawled.
"""

from __future__ import annotations

import dataclasses

from protego import Protego

__all__ = ["RobotsRules"]

# RFC 9309 §2.5: crawlers must parse at least 500 KiB.
MAX_ROBOTS_BYTES = 500 * 1024


@dataclasses.dataclass
class RobotsRules:
    """The rules of one host for one user agent."""

    user_agent: str
    parser: Protego | None = None  # None with allow_all: no robots.txt (4xx)
    allow_all: bool = False
    problem: str | None = None  # why nothing may be fetched (robots.txt unreachable)

    @classmethod
    def parse(cls, text: str, user_agent: str) -> RobotsRules:
        return cls(user_agent, Protego.parse(text[:MAX_ROBOTS_BYTES]))

    @classmethod
    def allow_everything(cls, user_agent: str) -> RobotsRules:
        return cls(user_agent, allow_all=True)

    @classmethod
    def unreachable(cls, user_agent: str, problem: str) -> RobotsRules:
        return cls(user_agent, problem=problem)

    def allowed(self, url: str) -> bool:
        if self.allow_all:
            return True
        if self.parser is None:
            return False
        # robots.txt never disallows itself (RFC 9309 §2.2.2).
        if url.split("?", 1)[0].endswith("/robots.txt"):
            return True
        return self.parser.can_fetch(url, self.user_agent)

    @property
    def crawl_delay(self) -> float | None:
        if self.parser is None:
            return None
        delay = self.parser.crawl_delay(self.user_agent)
        return float(delay) if delay is not None else None

    @property
    def sitemaps(self) -> list[str]:
        return list(self.parser.sitemaps) if self.parser is not None else []
