"""URL handling for the crawler: one spelling per page, and which URLs are the site's.

A page is reachable under many spellings (``/a/index.html`` and ``/a/``,
``x.html?from=home``, ``HTTP://Host:80/x.html#top``); the crawler fetches and
counts each page once by normalizing every link with :func:`normalize_url`
before it enters the frontier, and names an article by its canonical URL
(:func:`canonical_url`). Which hosts are the site is :func:`site_hosts`.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

__all__ = ["canonical_url", "host_of", "is_probably_html", "join_link", "normalize_url", "site_hosts", "www_twin"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Directory index documents: /news/ and /news/index.html are one page.
_INDEX_DOCUMENT = re.compile(r"/(?:index|default)\.(?:html?|shtml|php|asp|aspx|jsp)$", re.IGNORECASE)
# Static files ignore their query string (a web server serves the same file for
# x.html?from=home); dynamic pages (view.php?aid=3) do not.
_STATIC_PAGE = re.compile(r"(?:/|\.(?:html?|shtml|xhtml))$", re.IGNORECASE)
# Query parameters that only track where a visitor came from.
_TRACKING = re.compile(r"^(?:utm_\w+|spm|from|source|ref|fbclid|gclid)$", re.IGNORECASE)
# Links to files that are never article pages: not worth a request.
_NOT_HTML = re.compile(
    r"\.(?:jpe?g|png|gif|bmp|webp|svg|ico|pdf|docx?|xlsx?|pptx?|zip|rar|7z|gz|tar|mp3|mp4|avi|mov|"
    r"wmv|flv|swf|exe|apk|css|js|json|txt|csv|woff2?|ttf)$",
    re.IGNORECASE,
)
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
# A host as host_of gives it: a DNS name or an IP address, and a port.
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_HOST = re.compile(rf"^(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\])(?::\d+)?$")
_QUERY_SAFE = "=&%:@!$'()*+,;/?-._~"


def normalize_url(url: str) -> str | None:
    """The one spelling of ``url`` the crawler uses, or None when it is not an http(s) URL.

    Lower-case scheme and host, no default port, no fragment, ``.``/``..``
    segments resolved, unsafe characters percent-encoded (UTF-8), directory
    index documents reduced to their folder, and the query string dropped for
    static pages or stripped of tracking parameters and sorted for dynamic ones.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = parts.path or "/"
    trailing = path.endswith("/")
    path = posixpath.normpath(path)
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    if trailing and not path.endswith("/"):
        path += "/"
    path = quote(path, safe=_PATH_SAFE)
    path = _INDEX_DOCUMENT.sub("/", path)
    query = ""
    if parts.query and not _STATIC_PAGE.search(path):
        pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)]
        query = quote(urlencode(sorted(pairs)), safe=_QUERY_SAFE)
    return urlunsplit((scheme, netloc, path, query, ""))


def join_link(base: str, href: str) -> str | None:
    """``href`` as found in a page at ``base``, resolved and normalized (None for mailto:, javascript: …)."""
    href = href.strip()
    if not href or href.startswith("#"):
        return None
    try:
        return normalize_url(urljoin(base, href))
    except ValueError:
        return None


def host_of(url: str) -> str:
    """The host (and non-default port) of a normalized URL."""
    return urlsplit(url).netloc


def is_probably_html(url: str) -> bool:
    """False for links whose file extension says image, document, archive, script …"""
    return not _NOT_HTML.search(urlsplit(url).path)


def canonical_url(page_url: str, declared: str, hosts: set[str]) -> str:
    """The URL that names the article at ``page_url``.

    The page's own ``<link rel=canonical>`` (``declared``) when it resolves to
    one of the crawled ``hosts``; otherwise the normalized ``page_url``. A
    canonical on another host is ignored: the crawler names articles on the
    site it was asked to crawl.
    """
    if declared:
        resolved = join_link(page_url, declared)
        if resolved is not None and host_of(resolved) in hosts:
            return resolved
    return normalize_url(page_url) or page_url


def www_twin(host: str) -> str | None:
    """``example.org`` <-> ``www.example.org`` (same port), or None for an IP address or a one-label name."""
    name, sep, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
    if not sep or not port.isdigit():
        name, port = host, ""
    if name.startswith("["):
        return None
    try:
        ipaddress.ip_address(name)
        return None
    except ValueError:
        pass
    twin = name[4:] if name.startswith("www.") else "www." + name
    if "." not in twin.removeprefix("www."):  # localhost, or www.org whose twin would be org
        return None
    return f"{twin}:{port}" if port else twin


def site_hosts(start: str, *, include_www_twin: bool, allowed: Iterable[str] = ()) -> set[str]:
    """The hosts (``host[:port]`` as :func:`host_of` gives them) that are the site of ``start``.

    The start URL's host; its ``www.`` twin when ``include_www_twin`` (setting
    ``crawl_www_twin``); and the ``allowed`` hosts (setting
    ``crawl_allowed_hosts``: ``host``, ``host:port`` or a URL). Raises
    ``ValueError`` naming an ``allowed`` entry that is no host.
    """
    hosts = {host_of(start)}
    if include_www_twin:
        twin = www_twin(host_of(start))
        if twin:
            hosts.add(twin)
    scheme = urlsplit(start).scheme
    for entry in allowed:
        text = str(entry).strip()
        url = normalize_url(text if "://" in text else f"{scheme}://{text}/")
        if url is None or "@" in text or ("://" not in text and "/" in text) or not _HOST.match(host_of(url)):
            raise ValueError(f"setting crawl_allowed_hosts: {entry!r} is not a host; write it as "
                             "\"www.achie.org\" or \"achie.org:8080\"")
        hosts.add(host_of(url))
    return hosts
