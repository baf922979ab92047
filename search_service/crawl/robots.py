"""robots.txt as RFC 9309 says, parsed by Protego (Scrapy's parser).

Protego was chosen over ``urllib.robotparser`` because the standard library's
parser takes the first matching rule instead of the longest, knows no ``*``/``$``
wildcards and ignores ``Allow`` precedence, all of which real robots.txt files
use; Protego implements the RFC (longest match wins, Allow wins ties) and reads
``Crawl-delay`` and ``Sitemap`` lines too.

What a failed fetch means (RFC 9309 §2.3.1): a 4xx answer means there are no
rules (crawl everything); a 5xx answer, no answer or an answer that cannot be
read (cut short, a compression that does not decode, too slow) means the site
is unreachable, and then nothing may be crawled. A file over 500 KiB is read
up to there and the rest ignored, as Google does: never ignored whole, which
would allow everything it disallows.
"""

from __future__ import annotations

import dataclasses
import math

from protego import Protego

__all__ = ["RobotsRules"]

# RFC 9309 §2.5: crawlers must parse at least 500 KiB (and may ignore the rest).
MAX_ROBOTS_BYTES = 500 * 1024


@dataclasses.dataclass
class RobotsRules:
    """The rules of one host for one user agent."""

    user_agent: str
    parser: Protego | None = None  # None with allow_all: no robots.txt (4xx)
    allow_all: bool = False
    problem: str | None = None  # why nothing may be fetched (robots.txt unreachable)

    @classmethod
    def parse(cls, data: bytes, user_agent: str) -> RobotsRules:
        """The rules of a robots.txt file's bytes (the first :data:`MAX_ROBOTS_BYTES` of a longer one)."""
        return cls(user_agent, Protego.parse(data.decode("utf-8", errors="replace")))

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
        """The ``Crawl-delay`` for our agent, as written (any float; see :meth:`bounded_crawl_delay`)."""
        if self.parser is None:
            return None
        delay = self.parser.crawl_delay(self.user_agent)
        return float(delay) if delay is not None else None

    def bounded_crawl_delay(self, maximum: float) -> tuple[float | None, str | None]:
        """The ``Crawl-delay`` to apply, at most ``maximum``, and a note when it is not the file's value.

        ``1e300`` would overflow ``time.sleep`` and ``10000`` would idle for days;
        both are capped. A delay that is no number of seconds (nan, negative) is
        ignored.
        """
        delay = self.crawl_delay
        if delay is None:
            return None, None
        if math.isnan(delay) or delay < 0:
            return None, f"Crawl-delay {delay:g} is not a number of seconds; ignored"
        if delay > maximum:
            return maximum, (f"Crawl-delay {delay:g} s capped at {maximum:g} s "
                             "(the longest delay setting crawl_delay allows)")
        return delay, None

    @property
    def sitemaps(self) -> list[str]:
        return list(self.parser.sitemaps) if self.parser is not None else []
