"""docs/DEPLOY.md, run as written: its nginx block and its config.toml in front of a real ``search-service serve``.

The blocks are read from the document itself (so the document is what is tested), given free loopback ports,
a self-signed certificate and temporary folders, and run with Debian's nginx. Through it, every absolute URL
the service emits (OpenSearch description, suggestion links, page links and tags, JSON and CSV, redirects'
``Location``, ``Link`` headers) must start with the public address ``https://search.example.org/``, whether it
comes from ``public_url`` or from the forwarded host and scheme, and whatever ``Host`` a client sends; text
assets, ``widget.js`` first, are compressed.

nginx is installed with apt-get when the tests run as root (``make test`` does it beforehand); otherwise a
missing nginx fails the run under CI and is skipped, loudly, elsewhere.
"""

from __future__ import annotations

import base64
import gzip
import html
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

import pytest

from search_service.ingest import Ingest

from .helpers import REPO, SAMPLES, build_index, free_port

pytestmark = pytest.mark.processes  # nginx and a server process

DEPLOY = REPO / "docs" / "DEPLOY.md"
PUBLIC = "https://search.example.org/"
PUBLIC_HOST = "search.example.org"
INSTALL = "apt-get install -y nginx"
ADMIN_PASSWORD = "deploy-test-password"
# Hosts a client may send: the site's own name, and one it does not own (Host is the client's to choose).
CLIENT_HOSTS = (PUBLIC_HOST, "attacker.example")
# Absolute URLs that are not the service's own: XML namespaces and the like.
NOT_OURS = ("http://a9.com/-/spec/opensearch/", "http://www.mozilla.org/2006/browser/search/", "http://www.w3.org/")


def doc_block(language: str) -> str:
    """The one fenced block of ``language`` in docs/DEPLOY.md."""
    blocks = re.findall(rf"^```{language}\n(.*?)^```", DEPLOY.read_text(encoding="utf-8"), re.M | re.S)
    assert len(blocks) == 1, f"docs/DEPLOY.md should have exactly one ```{language} block, has {len(blocks)}"
    return blocks[0]


def substitute(text: str, replacements: list[tuple[str, str]]) -> str:
    """Each ``(pattern, replacement)`` must match: a document that changed shape fails, not tests less."""
    for pattern, replacement in replacements:
        text, count = re.subn(pattern, replacement, text, flags=re.M)
        assert count, f"docs/DEPLOY.md no longer has {pattern!r}: update tests/test_deploy_nginx.py"
    return text


# --------------------------------------------------------------------------- nginx


def nginx_binary() -> str:
    """Debian's nginx: found, installed (as root), or the run fails (CI) / skips (elsewhere) saying how."""
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/sbin"
    found = shutil.which("nginx", path=path)
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-qq", "nginx"]
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
            subprocess.run(install, env=env, capture_output=True)
        found = shutil.which("nginx", path=path)
    if found is None:
        message = f"nginx is not installed: run `sudo {INSTALL}` (make test installs it when run as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def nginx() -> str:
    return nginx_binary()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for search.example.org."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "fullchain.pem", folder / "privkey.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    f"/CN={PUBLIC_HOST}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def wait_for_port(port: int, process: subprocess.Popen, what: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail(f"{what} did not listen on {port} within {timeout} s:\n{log.read_text(errors='replace')[-3000:]}")


@dataclass
class Site:
    """The service behind the documented nginx: nginx's two ports and the service's own."""

    http_port: int
    https_port: int
    backend_port: int
    nginx_conf: Path
    sample_id: str
    seen: dict[str, list[str]] = field(default_factory=dict)  # absolute URLs found, by where they were found

    def request(self, path: str, *, host: str = PUBLIC_HOST, tls: bool = True,
                headers: dict[str, str] | None = None) -> tuple[http.client.HTTPResponse, bytes]:
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                "127.0.0.1", self.https_port, timeout=30, context=context)
        else:
            connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=30)
        try:
            connection.request("GET", quote(path, safe="/?=&%:@+,;"), headers={"Host": host, **(headers or {})})
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        return response, body


def start_service(tmp: Path, index_dir: Path, cache_dir: Path, *, public_url: bool) -> tuple[subprocess.Popen, int]:
    """``search-service --config config.toml serve`` with DEPLOY.md's config.toml (its port and folder changed)."""
    port = free_port()
    replacements = [(r'^index_dir = "/srv/search-service/index"', f"index_dir = {json.dumps(str(index_dir))}"),
                    (r"^port = 8080", f"port = {port}")]
    if not public_url:  # the fallback: the host and scheme nginx forwards
        replacements.append((r"^public_url = .*\n", ""))
    config = tmp / "config.toml"
    config.write_text(substitute(doc_block("toml"), replacements), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEARCH_SERVICE_")}
    env.update(SEARCH_SERVICE_CACHE_DIR=str(cache_dir), SEARCH_SERVICE_WORKERS="1",
               SEARCH_SERVICE_LOG_LEVEL="WARNING", SEARCH_SERVICE_ACCESS_LOG="false",
               SEARCH_SERVICE_ADMIN_PASSWORD=ADMIN_PASSWORD,
               # the test sends far more requests than a visitor would
               SEARCH_SERVICE_RATE_LIMIT="", SEARCH_SERVICE_EXPORT_RATE_LIMIT="",
               SEARCH_SERVICE_ARTICLE_RATE_LIMIT="")
    log = tmp / "service.log"
    with open(log, "wb") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "search_service.cli", "--config", str(config), "serve"],
                                   env=env, stdout=subprocess.DEVNULL, stderr=stderr, cwd=tmp)
    wait_for_port(port, process, "search-service serve", log, timeout=120)
    return process, port


def nginx_config(tmp: Path, backend_port: int, certificate: tuple[Path, Path]) -> tuple[Path, int, int]:
    """DEPLOY.md's nginx block on free ports, in an ``http {}`` block like Debian's nginx.conf."""
    http_port, https_port = free_port(), free_port()
    cert, key = certificate
    cache = tmp / "cache"
    block = substitute(doc_block("nginx"), [
        (r"listen 80;", f"listen 127.0.0.1:{http_port};"),
        (r"listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl"),
        (re.escape("/etc/letsencrypt/live/search.example.org/fullchain.pem"), str(cert)),
        (re.escape("/etc/letsencrypt/live/search.example.org/privkey.pem"), str(key)),
        (re.escape("http://127.0.0.1:8080"), f"http://127.0.0.1:{backend_port}"),
        (re.escape("/var/cache/nginx/search-static"), str(cache)),
    ])
    leftovers = re.findall(r"8080|/etc/|/var/", block)
    assert not leftovers, f"the nginx block still names {leftovers}: update tests/test_deploy_nginx.py"
    temp = {name: tmp / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    conf = tmp / "nginx.conf"
    conf.write_text("\n".join([
        "user root;" if os.geteuid() == 0 else "",  # the workers must reach the temporary folders
        "worker_processes 1;",
        "daemon off;",
        f"pid {tmp / 'nginx.pid'};",
        f"error_log {tmp / 'error.log'} warn;",
        "events { worker_connections 256; }",
        "http {",
        "    include /etc/nginx/mime.types;",
        "    default_type application/octet-stream;",
        f"    access_log {tmp / 'access.log'};",
        *(f"    {name}_temp_path {path};" for name, path in temp.items()),
        block,
        "}",
        "",
    ]), encoding="utf-8")
    return conf, http_port, https_port


def run_nginx(nginx: str, conf: Path, https_port: int) -> subprocess.Popen:
    prefix = conf.parent
    args = [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    checked = subprocess.run([*args, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, f"nginx rejects the documented block:\n{checked.stderr}"
    log = prefix / "error.log"
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(https_port, process, "nginx", log)
    return process


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def sample_index(tmp_path_factory, jieba_cache) -> Path:
    index_dir = tmp_path_factory.mktemp("deploy-index")
    build_index(index_dir, [SAMPLES], default_category="高新院新闻")
    return index_dir


@pytest.fixture(scope="module", params=["public_url", "forwarded"])
def site(request, nginx, certificate, sample_index, jieba_cache, tmp_path_factory) -> Iterator[Site]:
    """The documented set-up: with DEPLOY.md's public_url, and without it (the forwarded host and scheme)."""
    tmp = tmp_path_factory.mktemp(f"deploy-{request.param}")
    index_dir = tmp / "index"
    shutil.copytree(sample_index, index_dir)
    service, backend_port = start_service(tmp, index_dir, jieba_cache, public_url=request.param == "public_url")
    try:
        conf, http_port, https_port = nginx_config(tmp, backend_port, certificate)
        server = run_nginx(nginx, conf, https_port)
        try:
            sample_id = sorted(a.id for a in Ingest("高新院新闻").read([SAMPLES]))[0]
            yield Site(http_port, https_port, backend_port, conf, sample_id)
        finally:
            stop(server)
    finally:
        stop(service)


# --------------------------------------------------------------------------- absolute URLs

ABSOLUTE = re.compile(r"""https?://[^\s"'<>`\\,;)\]}]+""")
LINKS = re.compile(r"""(?:href|src|action)="([^"]+)\"""")


def text_of(response: http.client.HTTPResponse, body: bytes) -> str:
    if response.getheader("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return html.unescape(body.decode("utf-8", errors="replace"))


def article_urls() -> set[str]:
    """The ``url`` of each sample article: links to the institute's pages, not the service's."""
    return {a.url for a in Ingest("高新院新闻").read([SAMPLES]) if a.url}


def absolute_urls(response: http.client.HTTPResponse, body: bytes) -> list[str]:
    found = []
    for name in ("Location", "Content-Location", "Link", "Refresh"):
        for value in response.headers.get_all(name) or []:
            found.extend(ABSOLUTE.findall(value))
    content_type = response.getheader("Content-Type", "")
    # Documents, not code: widget.js's comments show how to embed it (https://SEARCH-HOST/...).
    if any(kind in content_type for kind in ("html", "xml", "json", "csv", "text/plain")):
        found.extend(ABSOLUTE.findall(text_of(response, body)))
    return found


def not_public(urls: list[str], articles: set[str]) -> list[str]:
    """The URLs among ``urls`` that are neither the public address nor someone else's (namespaces, articles)."""
    return [url for url in urls
            if not url.startswith(PUBLIC) and not url.startswith(NOT_OURS) and url not in articles]


STARTS = [
    "/", "/search?q=智慧城市", "/search?q=智慧城市&page=2", "/search?q=智惠城市", "/search?q=园区&sort=date_desc",
    "/search.csv?q=智慧城市", "/api/search?q=智慧城市", "/api/suggest?q=智慧", "/api/stats", "/healthz",
    "/opensearch.xml", "/opensearch/suggest?q=智慧", "/openapi.json", "/robots.txt", "/help",
    "/static/widget.js", "/doc/{id}", "/api/documents/{id}", "/api/documents/{id}/similar",
    # redirects: a doubled slash (werkzeug's routing), the staff pages' front door
    "/api//search?q=智慧", "/admin", "/admin/", "/admin/analytics", "/no-such-page",
]


def test_every_absolute_url_through_nginx_is_the_public_one(site):
    articles = article_urls()
    auth = {"Authorization": "Basic " + base64.b64encode(f"staff:{ADMIN_PASSWORD}".encode()).decode()}
    queue = [path.replace("{id}", site.sample_id) for path in STARTS]
    visited: set[str] = set()
    wrong: dict[str, list[str]] = {}
    checked = 0
    while queue and len(visited) < 80:
        path = queue.pop(0)
        if path in visited:
            continue
        visited.add(path)
        for host in CLIENT_HOSTS:
            response, body = site.request(path, host=host, headers=auth if path.startswith("/admin") else None)
            assert response.status < 500, (path, response.status)
            urls = absolute_urls(response, body)
            checked += len(urls)
            bad = not_public(urls, articles)
            if bad:
                wrong[f"{path} (Host: {host}, {response.status})"] = bad
            if host == PUBLIC_HOST and "html" in response.getheader("Content-Type", ""):
                for link in LINKS.findall(text_of(response, body)):
                    target = urlsplit(urljoin(PUBLIC + path.lstrip("/"), link))
                    if target.netloc == PUBLIC_HOST and not target.path.startswith("/static/"):
                        queue.append(target.path + ("?" + target.query if target.query else ""))
    assert not wrong, f"absolute URLs that are not {PUBLIC}: {json.dumps(wrong, ensure_ascii=False, indent=1)}"
    assert checked > 20  # opensearch.xml alone has six


def test_opensearch_description_names_the_public_address(site):
    for host in CLIENT_HOSTS:
        response, body = site.request("/opensearch.xml", host=host)
        assert response.status == 200
        templates = re.findall(r'template="([^"]+)"', text_of(response, body))
        assert len(templates) >= 3
        assert all(t.startswith(PUBLIC) for t in templates), templates


def test_suggestion_links_name_the_public_address(site):
    response, body = site.request("/opensearch/suggest?q=智慧")
    links = json.loads(text_of(response, body))[3]
    assert links and all(link.startswith(PUBLIC + "doc/") for link in links), links


def test_plain_http_is_sent_to_the_public_address(site):
    for host in CLIENT_HOSTS:
        response, _ = site.request("/search?q=x", host=host, tls=False)
        assert response.status == 301
        assert response.getheader("Location") == PUBLIC + "search?q=x"


def test_a_routing_redirect_stays_on_the_public_site(site):
    response, _ = site.request("/api//search?q=x")
    assert 300 <= response.status < 400
    location = urljoin(PUBLIC + "api//search", response.getheader("Location"))
    assert location.startswith(PUBLIC + "api/search"), location


@pytest.mark.parametrize("path", ["/static/widget.js", "/static/widget.js?v=1", "/static/app.js",
                                  "/static/style.css", "/api/search?q=智慧城市", "/opensearch.xml",
                                  "/search.csv?q=智慧城市", "/openapi.json", "/search?q=智慧城市"])
def test_text_is_compressed(site, path):
    if "?v=" in path:  # the versioned URL the pages link
        _, page = site.request("/search?q=x")
        versioned = re.search(r'src="(/static/widget\.js\?v=[^"]+)"', page.decode()) or re.search(
            r'href="(/static/style\.css\?v=[^"]+)"', page.decode())
        assert versioned, "the pages link no versioned static file"
        path = html.unescape(versioned.group(1))
    response, body = site.request(path, headers={"Accept-Encoding": "gzip"})
    assert response.status == 200, (path, response.status)
    assert response.getheader("Content-Encoding") == "gzip", (path, response.getheader("Content-Type"))
    assert "Accept-Encoding" in (response.getheader("Vary") or ""), path
    assert gzip.decompress(body)
